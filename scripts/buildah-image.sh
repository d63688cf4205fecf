#!/usr/bin/env bash
# Builds a minimal smppd image FROM scratch with buildah, without pulling any base
# image: the binary, the shared libraries it links (from this host), CA certificates
# and a passwd entry for the non-root user. For hosts that cannot pull the
# Dockerfile's base images; the Dockerfile is the reference build.
#   scripts/buildah-image.sh [BINARY] [IMAGE]      (default target/release/smppd, smppd:scratch)
# Then, with the same storage: `buildah push smppd:scratch docker-archive:smppd.tar`
# and `docker load -i smppd.tar` (or podman) elsewhere.
# Also checks the image: its root file system, chrooted as the image's user, runs
# `smppd --version` and `smppd check-config` on deploy/compose/config.toml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/target/release/smppd}"
image="${2:-smppd:scratch}"
command -v buildah >/dev/null || { echo "buildah-image: buildah not found (apt-get install buildah)" >&2; exit 1; }
[ -x "$bin" ] || { echo "buildah-image: $bin is not an executable (cargo build --release)" >&2; exit 1; }
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"

ctr="$(buildah from scratch)"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt="$(buildah mount "$ctr")"

install -D -m 0755 "$bin" "$mnt/usr/bin/smppd"
# The dynamic loader and every library the binary needs, at their own paths.
ldd "$bin" | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
  install -D -m 0644 "$(readlink -f "$lib")" "$mnt$lib"
done
chmod 0755 "$mnt"/lib64/ld-linux-*.so.* 2>/dev/null || true
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
fi
install -d -m 0755 "$mnt/etc" "$mnt/tmp"
printf 'root:x:0:0:root:/:/sbin/nologin\nsmppd:x:10001:10001:smppd:/var/lib/smppd:/sbin/nologin\n' > "$mnt/etc/passwd"
printf 'root:x:0:\nsmppd:x:10001:\n' > "$mnt/etc/group"
install -d -o 10001 -g 10001 -m 0750 "$mnt/var/lib/smppd" "$mnt/etc/smppd"
install -m 0600 -o 10001 -g 10001 "$root/deploy/compose/config.toml" "$mnt/etc/smppd/config.toml"

# The image runs: as its user, from its own root file system only.
chroot --userspec=10001:10001 "$mnt" /usr/bin/smppd --version
chroot --userspec=10001:10001 "$mnt" /usr/bin/smppd check-config --config /etc/smppd/config.toml

buildah config \
  --user 10001:10001 \
  --workingdir /var/lib/smppd \
  --port 2775 --port 9775 --port 9776 \
  --stop-signal SIGTERM \
  --entrypoint '["/usr/bin/smppd"]' \
  --cmd '["serve", "--config", "/etc/smppd/config.toml"]' \
  --label org.opencontainers.image.title=smppd \
  "$ctr"
buildah umount "$ctr" >/dev/null
buildah commit --rm "$ctr" "$image" >/dev/null
trap - EXIT
buildah inspect --type image --format '{{.FromImage}} {{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$image"
buildah images "$image"
