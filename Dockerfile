# The trainctl operator image: `docker build -t trainctl .` at the repository root, then
# `helm install trainctl charts/trainctl --set image.repository=... ` (chart values image.*).
# Stage 1 builds the release binary; stage 2 is a distroless runtime with only that binary,
# running as the non-root user 65532 that the chart's securityContext expects.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p trainctl \
    && cp target/release/trainctl /trainctl

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /trainctl /usr/local/bin/trainctl
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trainctl"]
CMD ["operator"]
