# The Hermes Agent image: Debian's s6 under our own /init, the real hermes-agent from PyPI.
# Builds with the legacy builder (no BuildKit-only syntax). Layers go from slowest-changing to
# fastest, so editing anything under image/ rebuilds in seconds. Nothing is re-owned or
# re-moded after the fact (that would copy the venv into a second layer).
ARG BASE_IMAGE=debian:bookworm-slim
# Two flavours (README "The image"): `full`, the default, carries what upstream's image carries so
# that every gateway and tool works without installing anything at run time (/opt/hermes is
# read-only to hermes): hermes-agent's `all` and `messaging` extras, the provider SDKs, and the
# programs the agent's tools run. `slim` is hermes-agent plus aiohttp only (`--build-arg FLAVOUR=slim`).
ARG FLAVOUR=full

# SQLite with the WAL-reset fix (sqlite.org/wal.html "walresetbug", fixed in 3.51.3): bookworm's
# 3.40.1 can lose commits to state.db, which hermes writes in WAL mode from several processes.
# Built from Debian unstable's source package: apt checks it against the archive's signature, it is
# pristine upstream source, and unstable always carries a current release (PyPI's apsw and
# pysqlite3 sdists carry no SQLite source: they fetch it from sqlite.org while building). Compiled
# with Debian unstable's own options (debian/rules), so Python's sqlite3 behaves as before, and put
# in /usr/local/lib, which ld.so.cache lists before /usr/lib: the system and venv Pythons' _sqlite3
# load it, dpkg's copy stays untouched. A stage of its own: the final image gets one 1.5 MB file.
FROM ${BASE_IMAGE} AS sqlite-build
ARG DEBIAN_FRONTEND=noninteractive
ARG SQLITE_SOURCE_MIRROR=http://deb.debian.org/debian
ARG SQLITE_MIN_VERSION=3.51.3
# check-valid-until=no: a dated mirror of unstable is still signed, and VERSION is checked below.
RUN printf 'deb-src [check-valid-until=no] %s unstable main\n' "$SQLITE_SOURCE_MIRROR" \
      > /etc/apt/sources.list.d/sqlite-source.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make xz-utils \
 && mkdir /build && cd /build && apt-get source --download-only sqlite3/unstable \
 && tar xJf sqlite3_*.orig.tar.xz && mv sqlite3-*/ src
# Compiled in a layer of its own, so changing an option does not fetch again.
RUN cd /build/src \
 && { dpkg --compare-versions "$(cat VERSION)" ge "$SQLITE_MIN_VERSION" \
      || { echo "sqlite-build: SQLite $(cat VERSION) is older than $SQLITE_MIN_VERSION" >&2; exit 1; }; } \
 && ./configure --soname=legacy --disable-tcl --enable-threadsafe --enable-load-extension \
      --enable-fts4 --enable-fts5 CFLAGS="-O2 -fno-strict-aliasing -DSQLITE_SECURE_DELETE \
      -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS \
      -DSQLITE_ENABLE_RTREE -DSQLITE_SOUNDEX -DSQLITE_ENABLE_UNLOCK_NOTIFY -DSQLITE_ENABLE_DBSTAT_VTAB \
      -DSQLITE_ENABLE_DBPAGE_VTAB -DSQLITE_ALLOW_ROWID_IN_VIEW -DSQLITE_ENABLE_UPDATE_DELETE_LIMIT \
      -DSQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_THREADSAFE=1 \
      -DSQLITE_USE_URI -DSQLITE_MAX_SCHEMA_RETRY=25 -DSQLITE_ENABLE_PREUPDATE_HOOK \
      -DSQLITE_ENABLE_SESSION -DSQLITE_ENABLE_STMTVTAB -DSQLITE_STRICT_SUBTYPE \
      -DSQLITE_MAX_VARIABLE_NUMBER=250000" >/dev/null \
 && make libsqlite3.so >/dev/null \
 && mkdir /out && cp -L libsqlite3.so /out/libsqlite3.so.0 && strip --strip-unneeded /out/libsqlite3.so.0

# The venv (/opt/hermes/.venv), in a stage of its own so that build-image.sh builds it side by side
# with the final stage's apt layer and the SQLite compile (the legacy builder runs stages one after
# another). Same base, same Debian python3 as the final stage, same path, so it is copied as is.
FROM ${BASE_IMAGE} AS venv-build
ARG FLAVOUR
ARG HERMES_AGENT_VERSION=0.19.0
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
      python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Extra CA certificates (a TLS-intercepting proxy's, say) for pip: any *.crt under
# image/extra-ca/ joins the system bundle. TLS verification is never turned off.
COPY image/extra-ca/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null 2>&1; \
    grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt >/dev/null
# Install, and stamp the install method where hermes looks (next to its code).
# umask 022 keeps the tree root-owned and read-only for everyone else from the start.
# The full flavour's extras, as upstream's image installs them (its Dockerfile): `all` (cron, cli,
# pty, mcp, homeassistant, sms, acp, google, web, youtube) and `messaging` (python-telegram-bot,
# discord.py, slack-bolt, aiohttp, ...), the provider SDKs `anthropic`, `bedrock`,
# `azure-identity`, the `hindsight` memory client and `matrix` (upstream installs compilers and
# libolm-dev for python-olm; PyPI has a cp311 manylinux wheel of it, so nothing here compiles:
# this stage has no compiler at all). Upstream's `otlp` and `google-chat` do not exist in 0.19.0.
# Left out, as upstream leaves them out: `rl`, `yc-bench`, `dev`, `voice` and the single-vendor
# extras (fal, exa, firecrawl, honcho, mem0, teams, feishu, dingtalk, modal, daytona, mistral,
# vertex, elevenlabs, edge-tts).
ARG FULL_EXTRAS=all,messaging,anthropic,bedrock,azure-identity,hindsight,matrix
RUN umask 022 \
 && if [ "$FLAVOUR" = full ]; then \
      set -- "hermes-agent[${FULL_EXTRAS}]==${HERMES_AGENT_VERSION}"; \
    else \
      set -- "hermes-agent==${HERMES_AGENT_VERSION}" aiohttp; \
    fi \
 && python3 -m venv /opt/hermes/.venv \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/hermes/.venv/bin/pip install --no-cache-dir "$@" \
 && /opt/hermes/.venv/bin/hermes --version >/dev/null \
 && printf 'docker\n' > /opt/hermes/.install_method \
 && printf 'docker\n' > "$(/opt/hermes/.venv/bin/python -c 'import hermes_cli, pathlib; print(pathlib.Path(hermes_cli.__file__).parent.parent)')/.install_method"

FROM ${BASE_IMAGE}

ARG FLAVOUR
ARG HERMES_AGENT_VERSION=0.19.0
ARG DEBIAN_FRONTEND=noninteractive

# The full flavour's programs are Debian's own (apt checks them against the archive's signature;
# upstream pins its own builds, which cannot be fetched here): git, ripgrep, ffmpeg and ssh for
# the terminal tool, curl, node/npm/npx for MCP servers, chromium (plus one font, so pages
# render text) for the browser tool. dpkg skips documentation and translations as it unpacks (as
# Debian's own slim images do; the setting stays for derived images): they were deleted anyway,
# and not writing them shortens the longest step of a build.
RUN case "$FLAVOUR" in full|slim) ;; *) echo "FLAVOUR must be full or slim, not '$FLAVOUR'" >&2; exit 2 ;; esac \
 && printf 'path-exclude=/usr/share/%s/*\n' doc man info locale lintian > /etc/dpkg/dpkg.cfg.d/hermes-no-docs \
 && tools="" \
 && if [ "$FLAVOUR" = full ]; then \
      tools="git ripgrep ffmpeg openssh-client curl nodejs npm chromium fonts-dejavu-core"; \
    fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      -o Dpkg::Options::=--force-unsafe-io \
      s6 execline python3 python3-venv ca-certificates procps passwd $tools \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*

# The same extra CA certificates, for npm below (and for TLS clients at run time).
COPY image/extra-ca/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null 2>&1; \
    grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt >/dev/null

# The browser tool runs agent-browser (a native CLI that drives Chromium over CDP). Its npm package
# ships the binaries of every platform inside it (nothing is downloaded by its postinstall when
# the binary is present); only this machine's is kept. Installed by root into /usr/local, so it is
# read-only to hermes like the venv. npm checks TLS against the system bundle (host CA included).
ARG AGENT_BROWSER_VERSION=0.41.2
RUN if [ "$FLAVOUR" = full ]; then \
      umask 022 \
      && npm_config_cafile=/etc/ssl/certs/ca-certificates.crt npm_config_update_notifier=false \
         npm install --global --no-audit --no-fund --cache /tmp/npm-cache "agent-browser@${AGENT_BROWSER_VERSION}" >/dev/null \
      && rm -rf /tmp/npm-cache /root/.npm \
      && case "$(dpkg --print-architecture)" in amd64) keep=linux-x64 ;; arm64) keep=linux-arm64 ;; *) keep=none ;; esac \
      && for f in /usr/local/lib/node_modules/agent-browser/bin/agent-browser-*; do \
           [ "$f" = "/usr/local/lib/node_modules/agent-browser/bin/agent-browser-$keep" ] || rm -f "$f"; \
         done \
      && agent-browser --version \
      && chromium --version; \
    fi

# The venv, built beside the layers above (see venv-build); one layer, root-owned, 0755/0644.
COPY --from=venv-build /opt/hermes/ /opt/hermes/

# The SQLite built in sqlite-build (see there), ahead of Debian's on the linker's path.
COPY --from=sqlite-build /out/libsqlite3.so.0 /usr/local/lib/
RUN ldconfig \
 && for py in python3 /opt/hermes/.venv/bin/python; do \
      "$py" -c 'import sqlite3, sys; print(sys.executable, sqlite3.sqlite_version); sys.exit(sqlite3.sqlite_version_info < (3, 51, 3))' || exit 1; \
    done

RUN groupadd -g 10000 hermes \
 && useradd -u 10000 -g hermes -d /opt/data -M -s /bin/sh hermes \
 && mkdir -p /opt/data /command /run/service /run/s6 \
 && chown hermes:hermes /opt/data /run/service /run/s6 \
 && for f in $(dpkg -L s6 execline | grep '^/usr/bin/'); do ln -s "$f" /command/; done

# AGENT_BROWSER_EXECUTABLE_PATH: where agent-browser finds its browser (upstream's stage 2 exports
# it the same way). In the slim flavour it names nothing, and nothing reads it: there is no
# agent-browser there.
ENV HERMES_HOME=/opt/data \
    PATH=/opt/hermes/bin:/opt/hermes/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    S6_BEHAVIOUR_IF_STAGE2_FAILS=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HERMES_DISABLE_LAZY_INSTALLS=1 \
    HERMES_WRITE_SAFE_ROOT=/opt/data:/tmp/hermes-files \
    AGENT_BROWSER_EXECUTABLE_PATH=/usr/bin/chromium

# The source tree says who runs what: image/root/ (root: /init, stage 2, cont-init, the scanner's
# supervisor, the boot's and restore's privileged Python), image/hermes/ (hermes: the agent, the
# slot tool, the services the hermes-run scanner supervises), image/either/ (whoever calls them).
# Every file lands root-owned and read-only for others; installed paths are the same as ever.
COPY image/seed/ /opt/hermes/docker/seed/
COPY image/either/command/ /command/
COPY image/either/bin/ /opt/hermes/bin/
COPY image/either/profile.d/hermes-venv.sh /etc/profile.d/hermes-venv.sh
COPY image/root/init/init /init
COPY image/root/init/ /etc/hermes-init/
COPY image/root/cont-init.d/ /etc/cont-init.d/
COPY image/root/s6-rc.d/ /etc/s6-overlay/s6-rc.d/
COPY image/root/bin/ /opt/hermes/bin/
COPY image/root/docker/ /opt/hermes/docker/
COPY image/hermes/s6-rc.d/ /etc/s6-overlay/s6-rc.d/
COPY image/hermes/docker/ /opt/hermes/docker/
COPY image/either/docker/ /opt/hermes/docker/
# stage2-hook.sh: the setup hook's path before cont-init had a folder of its own (entrypoint.sh
# and derived images call it).
RUN ln -s /etc/cont-init.d/01-hermes-setup /opt/hermes/docker/stage2-hook.sh \
 && ln -sf /opt/hermes/bin/tini /usr/bin/tini \
 && HOME=/tmp HERMES_HOME=/tmp/hh /opt/hermes/.venv/bin/python /opt/hermes/docker/list-subcommands.py > /opt/hermes/docker/hermes-subcommands \
 && grep -qx dashboard /opt/hermes/docker/hermes-subcommands && rm -rf /tmp/hh /tmp/.hermes \
 && rm -f /etc/hermes-init/init \
 && /opt/hermes/.venv/bin/python -m compileall -q /opt/hermes/docker/hermes_supervise /opt/hermes/docker/hermes_root /opt/hermes/docker/owner_rule.py \
 && chmod 0755 /init /etc/hermes-init/stage2 /etc/hermes-init/start-static-services \
      /etc/hermes-init/shutdown /etc/hermes-init/svscan/* /command/with-contenv /command/printcontenv \
      /etc/cont-init.d/* /opt/hermes/docker/*.sh /opt/hermes/docker/hermes-slots /opt/hermes/docker/hermes-boot-user \
      /opt/hermes/docker/hermes-boot /opt/hermes/docker/dashboard-served /opt/hermes/bin/* /etc/s6-overlay/s6-rc.d/*/run \
 && chmod -R go-w /opt/hermes/docker /opt/hermes/bin /etc/s6-overlay /etc/hermes-init /etc/cont-init.d

LABEL io.hermes-agent.managed="true" \
      io.hermes-agent.version="${HERMES_AGENT_VERSION}" \
      io.hermes-agent.flavour="${FLAVOUR}"

WORKDIR /opt/data
VOLUME /opt/data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/hermes/docker/healthcheck.sh"]
ENTRYPOINT ["/init", "/opt/hermes/docker/main-wrapper.sh"]
CMD []
