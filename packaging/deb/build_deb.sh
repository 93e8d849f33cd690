#!/usr/bin/env bash
# Build dist/edge-station_<version>_<arch>.deb from the PyInstaller bundle (packaging/build.sh).
#
# Installs:
#   /opt/edge-station/                               the bundle (executable + _internal/)
#   /usr/bin/edge-station                            -> /opt/edge-station/edge-station
#   /usr/share/applications/edge-station.desktop     menu entry (+ "Kiosk" action)
#   /usr/share/icons/hicolor/{256x256,scalable}/apps/edge-station.{png,svg}
#   /usr/lib/systemd/user/edge-station-kiosk.service kiosk unit (Restart=on-failure), not enabled
#   /usr/share/edge-station/kiosk/edge-station-kiosk.desktop   XDG autostart entry to copy, opt-in
#   /usr/lib/edge-station/edge-station-kiosk-start   what that autostart entry runs
#   /usr/share/edge-station/cameras.yaml             the commented example configuration
#   /usr/share/doc/edge-station/                     packaging.md (install/kiosk/upgrade/uninstall)
# Environment: BUNDLE (default dist/edge-station), DIST (default dist),
# DEB_COMPRESSION and DEB_LEVEL (default zstd 12: ~118 MB in ~10-25 s on 2 cores; for a release
# DEB_COMPRESSION=xz DEB_LEVEL=6 gives ~97 MB in 1.5-3 min; zstd needs dpkg >= 1.21.18, which every
# system with the glibc the bundle needs has).
set -euo pipefail
cd "$(dirname "$0")/../.."

BUNDLE=${BUNDLE:-dist/edge-station}
DIST=${DIST:-dist}
COMPRESSION=${DEB_COMPRESSION:-zstd}
LEVEL=${DEB_LEVEL:-12}
die() { echo "packaging/deb/build_deb.sh: error: $*" >&2; exit 1; }

command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian/Ubuntu: apt-get install dpkg)"
[ -x "$BUNDLE/edge-station" ] || die "no bundle at $BUNDLE: run packaging/build.sh first"
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/__init__.py)
[ -n "$version" ] || die "cannot read __version__ from app/__init__.py"
bundle_version=$("$BUNDLE/edge-station" --version) || die "$BUNDLE/edge-station --version failed"
[ "$bundle_version" = "edge-station $version" ] || \
  die "the bundle is '$bundle_version' but the source is $version: rebuild it with packaging/build.sh"
arch=$(dpkg --print-architecture)
deb="$DIST/edge-station_${version}_${arch}.deb"
stage="build/deb/edge-station_${version}_${arch}"

echo "== staging $stage"
rm -rf "$stage"
install -d "$stage/opt" "$stage/usr/bin" "$stage/DEBIAN"
cp -a "$BUNDLE" "$stage/opt/edge-station"
find "$stage/opt/edge-station" -depth -type d -name __pycache__ -exec rm -rf {} +
ln -s /opt/edge-station/edge-station "$stage/usr/bin/edge-station"
install -D -m 644 packaging/linux/edge-station.desktop "$stage/usr/share/applications/edge-station.desktop"
install -D -m 644 resources/icons/edge-station.png "$stage/usr/share/icons/hicolor/256x256/apps/edge-station.png"
install -D -m 644 resources/icons/edge-station.svg "$stage/usr/share/icons/hicolor/scalable/apps/edge-station.svg"
install -D -m 644 packaging/linux/edge-station-kiosk.service "$stage/usr/lib/systemd/user/edge-station-kiosk.service"
install -D -m 644 packaging/linux/edge-station-kiosk.desktop "$stage/usr/share/edge-station/kiosk/edge-station-kiosk.desktop"
install -D -m 755 packaging/linux/edge-station-kiosk-start "$stage/usr/lib/edge-station/edge-station-kiosk-start"
install -D -m 644 config/cameras.yaml "$stage/usr/share/edge-station/cameras.yaml"
install -D -m 644 docs/packaging.md "$stage/usr/share/doc/edge-station/packaging.md"
install -D -m 644 packaging/deb/copyright "$stage/usr/share/doc/edge-station/copyright"
for s in postinst prerm postrm; do install -m 755 "packaging/deb/$s" "$stage/DEBIAN/$s"; done

echo "== computing dependencies (ldd over the bundle)"
fields=$(python3 packaging/deb/shlibdeps.py "$stage/opt/edge-station") || die "the bundle needs libraries this machine lacks"
depends=$(sed -n 's/^Depends: //p' <<<"$fields")
suggests=$(sed -n 's/^Suggests: //p' <<<"$fields")
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: edge-station
Version: $version
Architecture: $arch
Maintainer: Edge Station packaging <packaging@edge-station.invalid>
Installed-Size: $installed_kb
Depends: $depends
Recommends: fonts-dejavu-core | fonts-liberation2
Suggests: xvfb${suggests:+, $suggests}
Section: video
Priority: optional
Description: camera station for a small PC: supervised workers, alerts, live wall
 Edge Station keeps a station's cameras and alert rules in a local database, runs
 one supervised worker process per camera that decodes the stream and measures it
 (frame rate, dropped frames, motion, source up/down), raises alerts, and shows it
 all in a desktop window or a fullscreen kiosk wall.
 .
 This package is a self-contained bundle in /opt/edge-station (no system Python
 needed). The kiosk unit and its autostart entry are installed but not enabled.
 Removing or purging the package keeps every account's station data.
CONTROL
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"

echo "== dpkg-deb --build ($COMPRESSION -$LEVEL)"
mkdir -p "$DIST"
start=$(date +%s)
dpkg-deb --root-owner-group -Z"$COMPRESSION" -z"$LEVEL" --build "$stage" "$deb" >/dev/null
dpkg-deb --info "$deb" >/dev/null || die "dpkg-deb cannot read back $deb"
echo "== $deb: $(du -h "$deb" | cut -f1) ($(( $(date +%s) - start )) s to compress), installs ${installed_kb} KiB"
echo "   Depends: $depends"
echo "   Suggests: xvfb${suggests:+, $suggests}"
