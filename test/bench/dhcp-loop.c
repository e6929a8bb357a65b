// Closed-loop DHCP load (test/bench/dhcp.sh): keeps OUTSTANDING exchanges in flight from a fixed set of client
// MACs that cycle, like a large site whose machines boot and retry, rather than perfdhcp's endless stream of new
// MACs (a server that holds offers is drained by that; Kea is not). Broadcasts from a client namespace, as PXE
// ROMs do (broadcast flag set, so every server answers to 255.255.255.255:68). A slot whose answer has not come
// within the timeout is counted as lost and starts over with the next MAC.
// Usage: dhcp-loop IFACE offer|dora SECONDS [OUTSTANDING=32] [MACS=20000] [TIMEOUT_MS=500]
// Prints one line: "exchanges/s p99_ms lost% sent".
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 1024
#define MAX_SAMPLES 4000000

struct slot {
  uint32_t xid;
  uint32_t mac;      // index into the MAC set
  int stage;         // 0: waiting for OFFER, 1: waiting for ACK
  double started;    // this exchange (DISCOVER sent)
  double sent;       // the last packet of it
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int fd;
static struct sockaddr_in to;
static double lat[MAX_SAMPLES];
static size_t nlat;

static size_t put_opt(uint8_t *p, uint8_t code, uint8_t len, const void *v) {
  p[0] = code;
  p[1] = len;
  memcpy(p + 2, v, len);
  return 2u + len;
}

// DISCOVER (type 1) or REQUEST (type 3) for MAC index m.
static void send_packet(uint32_t xid, uint32_t m, int type, uint32_t yiaddr, uint32_t server) {
  uint8_t b[300];
  memset(b, 0, sizeof b);
  b[0] = 1; b[1] = 1; b[2] = 6;
  memcpy(b + 4, &xid, 4);
  b[10] = 0x80; // broadcast flag
  uint8_t mac[6] = {0x02, 0x00, (uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8), (uint8_t)m};
  memcpy(b + 28, mac, 6);
  b[236] = 99; b[237] = 130; b[238] = 83; b[239] = 99;
  size_t o = 240;
  uint8_t t = (uint8_t)type;
  o += put_opt(b + o, 53, 1, &t);
  uint8_t cid[7] = {1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]};
  o += put_opt(b + o, 61, 7, cid);
  if (type == 3) {
    o += put_opt(b + o, 50, 4, &yiaddr);
    o += put_opt(b + o, 54, 4, &server);
  }
  uint8_t prl[4] = {1, 3, 6, 51};
  o += put_opt(b + o, 55, 4, prl);
  b[o++] = 255;
  if (sendto(fd, b, o < 300 ? 300 : o, 0, (struct sockaddr *)&to, sizeof to) < 0 && errno != EAGAIN) perror("sendto");
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s IFACE offer|dora SECONDS [OUTSTANDING] [MACS] [TIMEOUT_MS]\n", argv[0]);
    return 2;
  }
  const char *iface = argv[1];
  int dora = strcmp(argv[2], "dora") == 0;
  double secs = atof(argv[3]);
  int outstanding = argc > 4 ? atoi(argv[4]) : 32;
  uint32_t macs = argc > 5 ? (uint32_t)atoi(argv[5]) : 20000;
  double timeout = (argc > 6 ? atof(argv[6]) : 500) / 1000.0;
  if (outstanding < 1 || outstanding > MAX_SLOTS || macs < (uint32_t)outstanding) return 2;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int one = 1, big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface, (socklen_t)strlen(iface)) < 0) {
    perror("SO_BINDTODEVICE");
    return 1;
  }
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(68), .sin_addr.s_addr = INADDR_ANY};
  if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) {
    perror("bind :68");
    return 1;
  }
  to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(67), .sin_addr.s_addr = INADDR_BROADCAST};

  static struct slot s[MAX_SLOTS];
  uint32_t next_mac = 0, next_xid = (uint32_t)getpid() << 16;
  unsigned long done = 0, lost = 0, sent = 0;
  double t0 = now_s(), end = t0 + secs;
  for (int i = 0; i < outstanding; i++) {
    s[i] = (struct slot){.xid = ++next_xid, .mac = next_mac++ % macs, .stage = 0, .started = t0, .sent = t0};
    send_packet(s[i].xid, s[i].mac, 1, 0, 0);
    sent++;
  }
  uint8_t b[1500];
  for (;;) {
    double t = now_s();
    if (t >= end) break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 5);
    for (;;) {
      ssize_t n = recv(fd, b, sizeof b, 0);
      if (n < 0) break;
      if (n < 244 || b[0] != 2) continue;
      uint32_t xid;
      memcpy(&xid, b + 4, 4);
      int i = -1;
      for (int k = 0; k < outstanding; k++)
        if (s[k].xid == xid) { i = k; break; }
      if (i < 0) continue; // a late answer to a slot that timed out
      int type = 0;
      uint32_t server = 0;
      for (size_t o = 240; o + 1 < (size_t)n && b[o] != 255;) {
        if (b[o] == 0) { o++; continue; }
        if (b[o] == 53) type = b[o + 2];
        if (b[o] == 54 && b[o + 1] == 4) memcpy(&server, b + o + 2, 4);
        o += 2u + b[o + 1];
      }
      double at = now_s();
      if (type == 2 && s[i].stage == 0 && dora) {
        uint32_t yi;
        memcpy(&yi, b + 16, 4);
        s[i].stage = 1;
        s[i].sent = at;
        send_packet(xid, s[i].mac, 3, yi, server);
        sent++;
        continue;
      }
      if ((type == 2 && !dora && s[i].stage == 0) || (type == 5 && s[i].stage == 1)) {
        if (nlat < MAX_SAMPLES) lat[nlat++] = at - s[i].started;
        done++;
      } else if (type == 6) {
        lost++; // NAK: counted as lost, the slot starts over
      } else {
        continue;
      }
      s[i] = (struct slot){.xid = ++next_xid, .mac = next_mac++ % macs, .stage = 0, .started = at, .sent = at};
      send_packet(s[i].xid, s[i].mac, 1, 0, 0);
      sent++;
    }
    t = now_s();
    for (int i = 0; i < outstanding; i++)
      if (t - s[i].sent > timeout) {
        lost++;
        s[i] = (struct slot){.xid = ++next_xid, .mac = next_mac++ % macs, .stage = 0, .started = t, .sent = t};
        send_packet(s[i].xid, s[i].mac, 1, 0, 0);
        sent++;
      }
  }
  double wall = now_s() - t0;
  qsort(lat, nlat, sizeof lat[0], cmp);
  double p99 = nlat ? lat[(size_t)(nlat * 0.99) < nlat ? (size_t)(nlat * 0.99) : nlat - 1] * 1000 : 0;
  printf("%.0f %.3f %.2f%% %lu\n", done / wall, p99, done + lost ? 100.0 * lost / (done + lost) : 0.0, sent);
  return 0;
}
