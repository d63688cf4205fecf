# smppd container image: build stage with the Rust toolchain, run stage with the
# binary only, as a non-root user.
#   docker build -t smppd .
#   docker compose up            (compose.yaml: smppd, Valkey, MongoDB)
# Base images are pinned by tag; pin them by digest for reproducible builds.

FROM rust:1.85-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary is
# copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin smppd \
 && install -D -m 0755 target/release/smppd /out/smppd

FROM debian:bookworm-slim
# ca-certificates: rediss:// and mongodb+srv:// with TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 smppd \
 && useradd --system --uid 10001 --gid smppd --home-dir /var/lib/smppd --shell /usr/sbin/nologin smppd \
 && install -d -o smppd -g smppd -m 0750 /var/lib/smppd /etc/smppd
COPY --from=build /out/smppd /usr/bin/smppd
USER 10001:10001
WORKDIR /var/lib/smppd
# SMPP, metrics (/metrics, /healthz), admin API and console: set [metrics] listen and
# [admin] listen to 0.0.0.0:<port> in the config to reach them from outside.
EXPOSE 2775 9775 9776
# SIGTERM unbinds every session and waits shutdown_grace; give it that long
# (docker stop -t, compose stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/smppd"]
CMD ["serve", "--config", "/etc/smppd/config.toml"]
