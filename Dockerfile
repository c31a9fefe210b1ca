# The Hermes Agent image: Debian's s6 under our own /init, the real hermes-agent from PyPI.
# Builds with the legacy builder (no BuildKit-only syntax). Layers go from slowest-changing to
# fastest, so editing anything under image/ rebuilds in seconds.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG HERMES_AGENT_VERSION=0.19.0
ARG DEBIAN_FRONTEND=noninteractive

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      s6 execline python3 python3-venv ca-certificates procps passwd \
 && rm -rf /var/lib/apt/lists/*

# Extra CA certificates (a TLS-intercepting proxy's, say) for pip during the build: any *.crt
# under image/extra-ca/ joins the system bundle. TLS verification is never turned off.
COPY image/extra-ca/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null 2>&1; \
    grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt >/dev/null

RUN python3 -m venv /opt/hermes/.venv \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/hermes/.venv/bin/pip install --no-cache-dir \
      "hermes-agent==${HERMES_AGENT_VERSION}" aiohttp \
 && /opt/hermes/.venv/bin/hermes --version >/dev/null

RUN groupadd -g 10000 hermes \
 && useradd -u 10000 -g hermes -d /opt/data -M -s /bin/sh hermes \
 && mkdir -p /opt/data /command /run/s6 /run/service \
 && chown hermes:hermes /opt/data /run/s6 /run/service \
 && for f in $(dpkg -L s6 execline | grep '^/usr/bin/'); do ln -s "$f" /command/; done

ENV HERMES_HOME=/opt/data \
    PATH=/opt/hermes/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    S6_BEHAVIOUR_IF_STAGE2_FAILS=2 \
    PYTHONUNBUFFERED=1

COPY image/command/ /command/
COPY image/init/init /init
COPY image/init/ /etc/hermes-init/
COPY image/s6-rc.d/ /etc/s6-overlay/s6-rc.d/
COPY image/docker/ /opt/hermes/docker/
COPY image/seed/ /opt/hermes/docker/seed/
COPY image/cont-init.d/ /etc/cont-init.d/
RUN ln -sf /opt/hermes/docker/stage2-hook.sh /etc/cont-init.d/01-hermes-setup \
 && rm -f /etc/hermes-init/init \
 && chmod 0755 /init /etc/hermes-init/stage2 /etc/hermes-init/start-static-services \
      /etc/hermes-init/shutdown /etc/hermes-init/svscan/* /command/with-contenv \
      /etc/cont-init.d/* /opt/hermes/docker/*.sh /opt/hermes/docker/hermes-slots \
      /etc/s6-overlay/s6-rc.d/*/run \
 && chown -R root:root /opt/hermes \
 && chmod -R go-w /opt/hermes

LABEL io.hermes-agent.managed="true" \
      io.hermes-agent.version="${HERMES_AGENT_VERSION}"

WORKDIR /opt/data
VOLUME /opt/data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/hermes/docker/healthcheck.sh"]
ENTRYPOINT ["/init", "/opt/hermes/docker/main-wrapper.sh"]
CMD []
