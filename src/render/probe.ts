// Trial renders of a freshly loaded template library, so a template that throws, includes a missing snippet or
// renders a kickstart that fails its checks is refused at load (file:line) while its last good version keeps serving.
import type { Mac } from '../net/mac.ts';
import type { LoadedProfile } from '../profiles/load.ts';
import type { ImageFiles, ResolvedProfile } from '../profiles/schema.ts';
import {
  createRenderer,
  kickstartTemplateOf,
  type BootConfigKind,
  type BuildContext,
  type Rendered,
} from './render.ts';
import { TemplateFault, type TemplateError, type TemplateLibrary } from './templates.ts';
import type { TemplateProbe } from './template-catalog.ts';

/** A host with every field set (a static profile needs ip and netmask), on TEST-NET-1 (RFC 5737). */
const SAMPLE_HOST = {
  mac: '52:54:00:00:00:01' as Mac,
  hostname: 'template-probe',
  ip: '192.0.2.10',
  netmask: '255.255.255.0',
  gateway: '192.0.2.1',
  nameservers: ['192.0.2.53'],
};
const PLACEHOLDER_IMAGE: ImageFiles = {
  kernel: 'probe/vmlinuz',
  initrd: 'probe/initrd.img',
  stage2: 'probe',
  liveimg: 'probe/image.squashfs.img',
};

export function resolveForProbe(p: LoadedProfile, images: (name: string) => ImageFiles | undefined): ResolvedProfile {
  const { image, ...rest } = p.profile;
  if (typeof image !== 'string') return { ...rest, image };
  return { ...rest, image: images(image) ?? PLACEHOLDER_IMAGE, imageName: image };
}

function sampleContext(p: LoadedProfile, images: (name: string) => ImageFiles | undefined): BuildContext {
  return {
    host: SAMPLE_HOST,
    profileName: p.name,
    profile: resolveForProbe(p, images),
    buildId: 1,
    token: 'PROBE',
    baseUrl: 'http://192.0.2.1:8080',
  };
}

/**
 * Each kickstart template is rendered with every profile that names it (the shipped one also with the first profile
 * when none does); each boot template with the first profile. Only failures a template caused come back.
 */
export function templateProbe(deps: {
  profiles: () => Iterable<LoadedProfile>;
  images: (name: string) => ImageFiles | undefined;
}): TemplateProbe {
  return (lib: TemplateLibrary): TemplateError[] => {
    const renderer = createRenderer(() => lib);
    const profiles = [...deps.profiles()];
    const errors: TemplateError[] = [];
    const record = (r: Rendered) => {
      if (!r.ok && r.file) errors.push({ file: r.file, line: r.line, message: r.error });
    };
    for (const name of lib.names('kickstart')) {
      const users = profiles.filter((p) => kickstartTemplateOf(p.profile) === name);
      const probeWith = users.length ? users : profiles.slice(0, 1);
      for (const p of probeWith) {
        const ctx = sampleContext(p, deps.images);
        record(renderer.kickstart({ ...ctx, profile: { ...ctx.profile, kickstart: name } }));
      }
    }
    const first = profiles[0];
    for (const kind of ['pxelinux', 'grub', 'ipxe'] as BootConfigKind[]) {
      if (first) record(renderer.installConfig(kind, sampleContext(first, deps.images)));
      for (const local of [() => renderer.localConfig(kind, 'probe'), () => renderer.defaultConfig(kind, 'probe')]) {
        try {
          local();
        } catch (err) {
          if (err instanceof TemplateFault) errors.push({ file: err.file, line: err.line, message: err.reason });
        }
      }
    }
    return errors;
  };
}
