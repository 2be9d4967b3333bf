# The orchestrator image: the binary with CA certificates, time zones,
# rclone, an SSH client and the database clients, as a non-root user.
#
#   cargo build --release && docker build -t orchestrator .
#   docker run --rm -v ./config:/config:ro -v orchestrator-cache:/cache orchestrator run /config/pipeline.toml
#
# The binary is built outside the image, on Debian 12 as this base is (or,
# with a registry: docker run --rm -v "$PWD":/src -w /src rust:1.95-slim-bookworm
# sh -c 'apt-get update && apt-get install -y libssl-dev pkg-config make nasm
# autoconf automake libtool && rustup target add wasm32-wasip2 && cargo build --release'),
# so the image builds the same with or without an image registry: the first
# stage checks that it runs on this base before the image takes it.
ARG DEBIAN=bookworm

FROM debian:${DEBIAN}-slim AS binary
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/*
COPY target/release/orchestrator /orchestrator
RUN /orchestrator --version

FROM debian:${DEBIAN}-slim
# The user runs it as; `docker run --user 568:568` (TrueNAS' apps user)
# works as well: nothing depends on the name.
ARG UID=10001
ARG GID=10001
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates tzdata openssh-client rclone postgresql-client mariadb-client sqlite3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && groupadd --gid "$GID" orchestrator \
    && useradd --uid "$UID" --gid "$GID" --home-dir /cache --no-create-home --shell /usr/sbin/nologin orchestrator \
    && mkdir -p /config /cache /tmp \
    && chown "$UID:$GID" /cache \
    && chmod 1777 /tmp
COPY --from=binary /orchestrator /usr/local/bin/orchestrator
# Everything it writes goes under volumes, so `--read-only` works: the
# cache (compiled plugins, manifests, run history) and temporary files.
ENV HOME=/cache XDG_CACHE_HOME=/cache TMPDIR=/tmp ORCHESTRATOR_MAX_AGE=26h
VOLUME ["/cache", "/tmp"]
USER orchestrator
# Unhealthy when a source's newest backup is older than ORCHESTRATOR_MAX_AGE.
HEALTHCHECK --interval=5m --timeout=2m --start-period=1m \
    CMD orchestrator --log error status /config/pipeline.toml --max-age "$ORCHESTRATOR_MAX_AGE" > /dev/null || exit 1
# SIGTERM stops a run cooperatively (sources release what they hold; exit 143).
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="orchestrator" \
      org.opencontainers.image.description="Backups with WebAssembly plugins, stored in duplicity's format" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="README.md#run-it-in-a-container"
ENTRYPOINT ["orchestrator"]
CMD ["daemon", "/config/pipeline.toml"]
