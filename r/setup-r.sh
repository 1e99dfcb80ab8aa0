#!/bin/sh
# Make sure R (Rscript) and the reticulate package are there, for `make test-r`.
# As root on Debian/Ubuntu: installs Debian's r-base-core and r-cran-reticulate with apt-get
# (CRAN is not needed). Otherwise: says what to install and fails.
set -eu

have_r() {
    command -v Rscript >/dev/null 2>&1 &&
        Rscript -e 'quit(status = !requireNamespace("reticulate", quietly = TRUE))' >/dev/null 2>&1
}

have_r && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-r: installing R and reticulate from Debian (apt-get install r-base-core r-cran-reticulate) ..."
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    # Package lists are fetched only when they do not know the packages yet.
    if ! apt-cache show r-cran-reticulate >/dev/null 2>&1; then
        apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
    fi
    if ! apt-get install -y -qq --no-install-recommends r-base-core r-cran-reticulate >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "test-r: apt-get could not install r-base-core r-cran-reticulate (output above)" >&2
        exit 1
    fi
    rm -f "$log"
    have_r && exit 0
    echo "test-r: apt-get installed R, but Rscript still cannot load reticulate" >&2
    exit 1
fi

cat >&2 <<'MSG'
test-r: needs R (Rscript) with the reticulate package, and cannot install them here
(not root, or no apt-get). Install them, then run `make test-r` again:
  Debian/Ubuntu:  sudo apt-get install r-base-core r-cran-reticulate
  any R:          install.packages("reticulate")      # from CRAN, inside R
MSG
exit 1
