# hermesctl in a container, for `hermesctl serve` beside a compose fleet (compose/serve.yaml).
# Build context: the repository root. Same base image and CA handling as the Hermes image.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY image/extra-ca/ /usr/local/share/ca-certificates/extra/
RUN update-ca-certificates >/dev/null 2>&1 || true
COPY pyproject.toml README.md /src/
COPY hermesctl/ /src/hermesctl/
COPY bin/ /src/bin/
RUN python3 -m venv /opt/hermesctl \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt /opt/hermesctl/bin/pip install --no-cache-dir /src \
 && rm -rf /src
ENV PATH=/opt/hermesctl/bin:$PATH
ENTRYPOINT ["hermesctl"]
CMD ["serve", "--listen", "0.0.0.0:9477", "--token-file", "/run/secrets/hermesctl_token"]
