# The operator as a small non-root image. From the repository root:
#   docker build -t webtoon-operator:0.1.0 .
# kube speaks TLS through rustls with ring, so the musl build links no OpenSSL and no
# libc: the binary is static and runs on an image without either.
FROM rust:1.89-bookworm AS build
# ring compiles C and assembly, which for the musl target needs musl-gcc. The package
# follows the base image's Debian release, so its version is pinned by that tag.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin webtoon-operator \
 && cp target/x86_64-unknown-linux-musl/release/webtoon-operator /webtoon-operator

# No shell and no package manager; uid 65532 so that runAsNonRoot admits it.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /webtoon-operator /usr/local/bin/webtoon-operator
USER 65532:65532
# /metrics, /healthz and /readyz (--metrics-address).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/webtoon-operator"]
CMD ["run"]
