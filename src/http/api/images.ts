// GET /api/images: the imported RHVH images, their files and EFI loaders, and the profiles that use each.
import express from 'express';
import { imageEfiLoaders } from '../../images/store.ts';
import { apiRoute } from '../openapi.ts';
import { Images } from '../api-schemas.ts';
import type { ApiContext } from './context.ts';

export function imageRoutes(c: ApiContext): express.Router {
  const { d } = c;
  const r = express.Router();
  apiRoute(
    r,
    c.docs,
    {
      method: 'get',
      path: '/images',
      summary: 'the imported RHVH images (rackboot image import), their files, EFI loaders and the profiles using each',
      tags: ['images'],
      responses: { 200: Images },
    },
    async (_req, res) => {
      const profiles = [...d.profiles().profiles.values()];
      res.json(
        ((await d.images?.list()) ?? []).map((i) => ({
          name: i.name,
          version: i.version,
          sourceSha256: i.sourceSha256,
          importedAt: new Date(i.importedAt).toISOString(),
          kernel: i.kernel,
          initrd: i.initrd,
          stage2: i.stage2,
          liveimg: i.liveimg,
          usedBy: profiles
            .filter((lp) => lp.profile.image === i.name)
            .map((lp) => lp.name)
            .sort(),
          efiLoaders: imageEfiLoaders(i) ?? null,
          files: i.files,
        })),
      );
    },
  );
  return r;
}
