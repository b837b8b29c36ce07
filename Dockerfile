# syntax=docker/dockerfile:1
# sluice in a container: `docker build -t sluice .`, then
#   docker run -p 8080:8080 -v sluice-data:/var/lib/sluice -e SLUICE_ADMIN_PASSWORD=... sluice
# Build and runtime share Debian 12 (bookworm), so the binary finds the glibc it was linked to.
# Not built by CI on the development machine (no Docker engine there): linted with hadolint
# (docs/deployment.md, "Container").

FROM rust:1.95-bookworm AS build
# `sluice version` names it (build.rs); the context has no .git.
ARG SLUICE_BUILD_COMMIT=unknown
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates crates
COPY src src
COPY tests tests
# docs/errors.md is compiled in (the error codes published with each answer).
COPY docs docs
RUN cargo build --release --locked --bin sluice \
    && strip target/release/sluice

FROM debian:bookworm-slim AS runtime
# ca-certificates: forwarding to https upstreams (reqwest with rustls reads the system roots).
# Not pinned: bookworm's security updates replace the version, and a pin would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid sluice --home-dir /var/lib/sluice --shell /usr/sbin/nologin sluice \
    && install -d -o sluice -g sluice -m 0750 /var/lib/sluice
COPY --from=build /src/target/release/sluice /usr/bin/sluice
COPY packaging/docker/sluice.toml /etc/sluice/sluice.toml
# Numeric, so that the host and Kubernetes (runAsNonRoot) can tell it is not root.
USER 10001:10001
WORKDIR /var/lib/sluice
VOLUME ["/var/lib/sluice"]
ENV SLUICE_CONFIG=/etc/sluice/sluice.toml
EXPOSE 8080
# `sluice health` asks /healthz of the local server (no curl in the image).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/bin/sluice", "health", "--url", "http://127.0.0.1:8080/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/sluice"]
CMD ["serve"]
