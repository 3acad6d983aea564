# finalping container image: a multi-stage build (Rust builder, slim Debian
# runtime with CA certificates) that runs as a non-root user (uid/gid 10001,
# as the Kubernetes manifests of `finalping deploy kubernetes` expect).
#
#   docker build -t finalping:0.1.0 .
#   docker run --rm finalping:0.1.0 --help
#   docker run --rm -p 8080:8080 finalping:0.1.0 serve --host 0.0.0.0
#
# The runtime image also has /bin/sh, grep, date and sleep: the merge Job's
# init container runs its wait script with them.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Cargo.toml names the benches, so cargo needs their files to read it.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin finalping

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 finalping \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/finalping \
       --shell /usr/sbin/nologin finalping
COPY --from=build /src/target/release/finalping /usr/local/bin/finalping
USER 10001:10001
WORKDIR /home/finalping
# 8080: `serve`; 9464: `run --metrics-listen` (Prometheus).
EXPOSE 8080 9464
ENTRYPOINT ["finalping"]
CMD ["--help"]
