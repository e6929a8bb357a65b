#!/bin/busybox sh
# rackboot e2e stand-in for Anaconda: boots from inst.ks=, checks the kickstart as RHVH needs it,
# reports progress, then calls the built (or failed) URL found in the kickstart and reboots.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null
say() { echo "[installer] $*"; }
say "STARTED uptime $(cut -d' ' -f1 /proc/uptime)s"
KS=; STAGE2=; BOOTIF=; SENDMAC=
for a in $(cat /proc/cmdline); do
  case "$a" in inst.ks=*) KS=${a#inst.ks=};; inst.stage2=*) STAGE2=${a#inst.stage2=};; BOOTIF=*) BOOTIF=${a#BOOTIF=};; inst.ks.sendmac) SENDMAC=1;; esac
done
say "cmdline inst.ks=$KS inst.stage2=$STAGE2 BOOTIF=$BOOTIF sendmac=${SENDMAC:-0}"
for m in e1000 virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net efivarfs; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
# The firmware as the installed OS sees it: Anaconda lays out the disk (and the bootloader) from this.
if [ -d /sys/firmware/efi ]; then
  FIRMWARE=uefi
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
  # SecureBoot-<EFI global GUID>: 4 attribute bytes, then 1 = enforced
  SB=$(od -An -t u1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c 2>/dev/null | awk '{print $NF}')
  say "FIRMWARE uefi secureboot=${SB:-unknown}"
else
  FIRMWARE=bios
  say "FIRMWARE bios"
fi
ip link set lo up
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
MAC=$(cat /sys/class/net/eth0/address)
finish() { say "REBOOT"; sync; reboot -f; sleep 5; poweroff -f; }
if ! udhcpc -i eth0 -f -q -n -t 10 -T 2 -s /etc/udhcpc.script; then say "DHCP_FAIL"; finish; fi
say "DHCP_OK $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
[ "$BOOTIF" = "01-$(echo "$MAC" | tr : -)" ] && say "BOOTIF_OK $BOOTIF" || say "BOOTIF_MISMATCH got '$BOOTIF' for $MAC"
[ -n "$KS" ] || { say "NO_KS on the kernel command line"; finish; }
# inst.ks.sendmac: Anaconda sends one X-RHN-Provisioning-MAC-<n>: <ifname> <mac> header per interface.
if [ -n "$SENDMAC" ]; then set -- --header "X-RHN-Provisioning-MAC-0: eth0 $MAC"; else set --; fi
if ! wget -q "$@" -O /tmp/ks.cfg "$KS"; then say "KS_FAIL $KS"; finish; fi
say "KS_OK $(wc -c < /tmp/ks.cfg) bytes"

PROBLEMS=
problem() { say "CHECK_FAIL $*"; PROBLEMS="$PROBLEMS; $*"; }
# the status line of a request, from busybox wget's -S (server response on stderr)
status() { grep -o 'HTTP/1\.[01] [0-9]*' | tail -1; }
# busybox wget cannot send HEAD: write it by hand (stdin stays open until the server closes, HTTP/1.0)
head_status() {
  hp=${1#http://}; path=/${hp#*/}; hp=${hp%%/*}; host=${hp%:*}; port=${hp##*:}; [ "$port" = "$hp" ] && port=80
  { printf 'HEAD %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hp"; sleep 3; } | nc "$host" "$port" | status
}
grep -q '^%packages' /tmp/ks.cfg && problem "kickstart has a %packages section"
LIVEIMG=$(sed -n 's/^liveimg --url=\([^ ]*\).*/\1/p' /tmp/ks.cfg)
if [ -z "$LIVEIMG" ]; then problem "no liveimg --url"; else
  s=$(head_status "$LIVEIMG"); case "$s" in *" 200"*) say "LIVEIMG_HEAD_OK $s";; *) problem "liveimg HEAD answered '$s'";; esac
  s=$(wget -S -O /tmp/part --header 'Range: bytes=0-1023' "$LIVEIMG" 2>&1 | status); case "$s" in *" 206"*) say "LIVEIMG_RANGE_OK $s";; *) problem "liveimg Range GET answered '$s'";; esac
fi
grep -q '^autopart --type=thinp' /tmp/ks.cfg || grep -q '^logvol .* --thin ' /tmp/ks.cfg || problem "neither autopart --type=thinp nor a thin layout"
sed -n '/^%post/,/^%end/p' /tmp/ks.cfg | grep -q '^nodectl init' || problem "no nodectl init in %post"
if [ "$FIRMWARE" = uefi ]; then
  # UEFI needs an EFI System Partition: autopart makes one, a custom layout must ask (reqpart, or part /boot/efi).
  if grep -q '^autopart' /tmp/ks.cfg; then say "EFI_PARTITION_OK autopart"
  elif l=$(grep -m1 -E '^(reqpart|part /boot/efi)( |$)' /tmp/ks.cfg); then say "EFI_PARTITION_OK $l"
  else problem "custom layout on UEFI without an EFI System Partition (no reqpart, no part /boot/efi): Anaconda stops at storage"; fi
fi
bootorder() { efibootmgr 2>/dev/null | sed -n 's/^BootOrder: *//p'; }
if [ "$FIRMWARE" = uefi ]; then
  # Anaconda's bootloader step: the installed OS gets a boot entry, first in BootOrder (efibootmgr -c). The lab has no
  # disk: the firmware's built-in shell stands in for the installed OS (booting it = the host ran its disk without asking rackboot).
  # (Without a shell entry the firmware's own menu, UiApp, stands in.)
  OS=$(efibootmgr 2>/dev/null | grep -m1 'EFI Internal Shell' | sed 's/^Boot\([0-9A-Fa-f]\{4\}\).*/\1/')
  [ -n "$OS" ] || OS=$(efibootmgr 2>/dev/null | grep -m1 ' UiApp' | sed 's/^Boot\([0-9A-Fa-f]\{4\}\).*/\1/')
  BEFORE=$(bootorder)
  REST=$(echo "$BEFORE" | tr ',' '\n' | grep -vix "$OS" | paste -sd, -)
  if [ -n "$OS" ] && efibootmgr -o "$OS${REST:+,$REST}" >/dev/null 2>&1; then say "BOOTORDER_OS_FIRST $BEFORE -> $(bootorder) (Boot$OS stands in for the OS)"
  else say "BOOTORDER_FAIL cannot put an OS entry first (shell entry '$OS', order '$BEFORE')"; fi
  # Then %post: run the kickstart's own efibootmgr step, the shell functions whose body calls efibootmgr.
  sed -n '/^%post/,/^%end/p' /tmp/ks.cfg | awk '/^[A-Za-z_][A-Za-z0-9_]*\(\) *\{/ { f = $0; body = ""; infn = 1; next }
    infn && /^\}/ { if (body ~ /efibootmgr/) print f body "\n}"; infn = 0; next } infn { body = body "\n" $0 }' > /tmp/netboot.sh
  FNS=$(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)() *{.*/\1/p' /tmp/netboot.sh)
  if [ -z "$FNS" ]; then say "NETBOOT_FIRST_MISSING no efibootmgr step in %post: BootOrder stays $(bootorder)"
  else
    . /tmp/netboot.sh
    for f in $FNS; do if $f; then say "NETBOOT_FIRST_OK $f: BootOrder $(bootorder) (BootCurrent $(efibootmgr | sed -n 's/^BootCurrent: *//p'))"; else say "NETBOOT_FIRST_FAIL $f"; fi; done
  fi
fi
EVENTS=$(grep -o 'http://[^ ]*/events/[A-Za-z0-9_-]*' /tmp/ks.cfg | head -1)
BUILT=$(sed -n '/^%post/,/^%end/p' /tmp/ks.cfg | grep -o 'http://[^ ]*/built/[A-Za-z0-9_-]*' | tail -1)
FAILED=$(grep -o 'http://[^ ]*/failed/[A-Za-z0-9_-]*' /tmp/ks.cfg | head -1)
step() { wget -q -O /dev/null --header 'Content-Type: application/json' --post-data "{\"step\":\"$1\"}" "$EVENTS" && say "EVENT_OK $1" || say "EVENT_FAIL $1"; }
step installing
step post-started
# The profile's %post snippet decides the outcome in this stand-in: a marker line makes %post fail.
if [ -n "$PROBLEMS" ] || grep -q 'rackboot-e2e-fail' /tmp/ks.cfg; then
  { echo "+ nodectl init"; echo "stand-in %post failed for $MAC$PROBLEMS"; } > /tmp/ks.post.log
  if wget -q -O /dev/null --header 'Content-Type: text/plain' --post-file=/tmp/ks.post.log "$FAILED"; then say "FAILED_POSTED"; else say "FAILED_POST_ERROR"; fi
else
  step nodectl-init
  if wget -q -O /tmp/built.out "$BUILT"; then say "BUILT_OK $(cat /tmp/built.out)"; else say "BUILT_FAIL $BUILT"; fi
fi
finish
