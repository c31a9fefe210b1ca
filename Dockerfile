# The Hermes Agent image: Debian's s6 under our own /init, the real hermes-agent from PyPI.
# Builds with the legacy builder (no BuildKit-only syntax). Layers go from slowest-changing to
# fastest, so editing anything under image/ rebuilds in seconds. Nothing is re-owned or
# re-moded after the fact (that would copy the 220 MB venv into a second layer).
ARG BASE_IMAGE=debian:bookworm-slim

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

FROM ${BASE_IMAGE}

ARG HERMES_AGENT_VERSION=0.19.0
ARG DEBIAN_FRONTEND=noninteractive

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      s6 execline python3 python3-venv ca-certificates procps passwd \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*

# Extra CA certificates (a TLS-intercepting proxy's, say) for pip during the build: any *.crt
# under image/extra-ca/ joins the system bundle. TLS verification is never turned off.
COPY image/extra-ca/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null 2>&1; \
    grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt >/dev/null

# One layer: install, and stamp the install method where hermes looks (next to its code).
# umask 022 keeps the tree root-owned and read-only for everyone else from the start.
RUN umask 022 \
 && python3 -m venv /opt/hermes/.venv \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/hermes/.venv/bin/pip install --no-cache-dir \
      "hermes-agent==${HERMES_AGENT_VERSION}" aiohttp \
 && /opt/hermes/.venv/bin/hermes --version >/dev/null \
 && printf 'docker\n' > /opt/hermes/.install_method \
 && printf 'docker\n' > "$(/opt/hermes/.venv/bin/python -c 'import hermes_cli, pathlib; print(pathlib.Path(hermes_cli.__file__).parent.parent)')/.install_method"

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

ENV HERMES_HOME=/opt/data \
    PATH=/opt/hermes/bin:/opt/hermes/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    S6_BEHAVIOUR_IF_STAGE2_FAILS=2 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HERMES_DISABLE_LAZY_INSTALLS=1 \
    HERMES_WRITE_SAFE_ROOT=/opt/data:/tmp/hermes-files

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
      io.hermes-agent.version="${HERMES_AGENT_VERSION}"

WORKDIR /opt/data
VOLUME /opt/data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/hermes/docker/healthcheck.sh"]
ENTRYPOINT ["/init", "/opt/hermes/docker/main-wrapper.sh"]
CMD []
