# syntax=docker/dockerfile:1
# driftd's container image: built in a Rust image, run in a slim Debian one
# as an unprivileged user. Build from the repository root:
#
#   docker build -t driftd:0.1.0 .
#   docker run --rm -p 9898:9898 -e DRIFTD_KAFKA_BROKERS=kafka:9092 driftd:0.1.0
#
# deploy/kubernetes/ runs it with its config from a ConfigMap, credentials
# from a Secret and the state store on a persistent volume.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka and its OpenSSL are built from source (make, perl and a C
# compiler, all in the Rust image).
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY examples examples
# No debug info in the image's binary; the same fat-LTO release profile
# otherwise.
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin driftd \
    && install -m 0755 target/release/driftd /usr/local/bin/driftd

FROM debian:bookworm-slim AS runtime
# zlib is driftd's one shared library beyond glibc; CA certificates for TLS
# to Kafka and to webhook targets.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 driftd \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/driftd --create-home driftd
COPY --from=build /usr/local/bin/driftd /usr/local/bin/driftd
COPY config/driftd.toml /etc/driftd/driftd.toml
USER 10001:10001
WORKDIR /var/lib/driftd
# The example config listens on loopback and keeps state in the working
# directory; in a container, listen on every interface and keep the state
# store on the volume.
ENV DRIFTD_CONFIG=/etc/driftd/driftd.toml \
    DRIFTD_HTTP_LISTEN=0.0.0.0:9898 \
    DRIFTD_STATE_DIR=/var/lib/driftd/state
VOLUME ["/var/lib/driftd"]
EXPOSE 9898
ENTRYPOINT ["/usr/local/bin/driftd"]
CMD ["run"]
