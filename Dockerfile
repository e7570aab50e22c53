# syntax=docker/dockerfile:1
# Build: compile the release binary (the web client is embedded into it).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY static ./static
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin parley \
    && cp target/release/parley /usr/local/bin/parley

# Run: a small Debian with the binary, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --create-home parley
COPY --from=build /usr/local/bin/parley /usr/local/bin/parley
USER parley
WORKDIR /data
ENV PARLEY_BIND=0.0.0.0:8000 \
    PARLEY_LOG=info
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/parley"]
