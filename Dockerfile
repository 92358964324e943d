# knockoff-serve in a container: built in the Rust image, run from a slim Debian image as a
# non-root user, with the shipped model inside and the brand registry's store in a volume.
#
#   docker build -t knockoff:0.1.0 .
#   docker run -p 8080:8080 -v knockoff-store:/var/lib/knockoff knockoff:0.1.0
#
# Configuration is knockoff-serve's environment (`knockoff-serve --help`); logs are JSON lines
# on stderr. deploy/ has the KServe and Kubernetes manifests; tests/deploy_manifests.rs checks
# that this file and those manifests agree with the server.

FROM docker.io/library/rust:1.95-slim-bookworm AS builder
WORKDIR /src
# The workspace: the root crate, and the Python bindings' manifest and sources (a member, so
# cargo reads them; only knockoff-serve is built).
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY bindings/python/Cargo.toml bindings/python/Cargo.toml
COPY bindings/python/src bindings/python/src
RUN cargo build --release --locked --bin knockoff-serve

FROM docker.io/library/debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin knockoff \
    && mkdir -p /var/lib/knockoff \
    && chown knockoff /var/lib/knockoff
COPY --from=builder /src/target/release/knockoff-serve /usr/local/bin/knockoff-serve
COPY models/default /opt/knockoff/models/default
ENV KNOCKOFF_MODEL=/opt/knockoff/models/default \
    KNOCKOFF_ADDR=0.0.0.0:8080 \
    KNOCKOFF_STORE=/var/lib/knockoff/knockoff.db \
    KNOCKOFF_LOG_FORMAT=json \
    KNOCKOFF_SHUTDOWN_TIMEOUT_SECS=30
VOLUME /var/lib/knockoff
USER 10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/knockoff-serve"]
