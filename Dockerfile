# fedmi in one image: fedmi-coordinator, fedmi-client and fedmi, run as the
# unprivileged user fedmi (uid 10001). docs/operations.md, "Deploying".
#
#   scripts/build-image.sh                    build it offline (base images made
#                                             with debootstrap, ccache kept)
#   scripts/build-image.sh --from-build build pack binaries built on this host
#
# By hand, with base images already present (a registry's or the script's):
#   podman build --build-arg BINARIES=build -t fedmi:latest .
#   docker build -t fedmi:latest .
# (podman 4 resolves `FROM ${BINARIES}` only when the argument is given.)
#
# Stages: `build` compiles on debian:bookworm with the packages of
# scripts/install-deps.sh --build-only; `prebuilt` instead takes binaries a
# host built (scripts/build-image.sh --from-build stages them in
# .image-prebuilt/); `runtime` is debian:bookworm-slim with only the shared
# libraries they link (scripts/runtime-packages.sh) and the binaries.

ARG BUILD_BASE=debian:bookworm
ARG RUNTIME_BASE=debian:bookworm-slim
# build: compile here; prebuilt: binaries from .image-prebuilt/.
ARG BINARIES=build

FROM ${BUILD_BASE} AS build
ARG BUILD_TYPE=Release
ARG JOBS=2
# ccache's directory: the cache mount below, or a host folder the build
# mounts there (scripts/build-image.sh --ccache-dir).
ARG CCACHE_DIR=/ccache
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
# What `--version` reports as the commit (the context has no .git);
# scripts/build-image.sh passes the checkout's.
# Declared after install-deps: a new commit must not re-run that layer.
ARG FEDMI_GIT_COMMIT=unknown
COPY . /src
# The sources sit at /src and the build at /src/build, so with base_dir=/src
# ccache sees the same relative paths as a host build in <checkout>/build.
RUN --mount=type=cache,target=/ccache,id=fedmi-ccache \
    export CCACHE_DIR="${CCACHE_DIR}" CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1 \
           FEDMI_GIT_COMMIT="${FEDMI_GIT_COMMIT}" \
           CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-20G}" && \
    cmake -S /src -B /src/build -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" \
          -DFEDMI_BUILD_TESTS=OFF -DFEDMI_BUILD_BENCH=OFF && \
    cmake --build /src/build -j "${JOBS}" \
          --target fedmi-coordinator fedmi-client fedmi && \
    ccache --show-stats | sed -n '1,8p' && \
    mkdir -p /out/bin && \
    for b in fedmi-coordinator fedmi-client fedmi; do \
      strip --strip-debug -o "/out/bin/$b" "/src/build/bin/$b"; \
    done && \
    /src/scripts/runtime-packages.sh /out/bin/* > /out/runtime-packages.txt

# What scripts/build-image.sh --from-build staged: bin/ and
# runtime-packages.txt, made on the host that built the binaries.
FROM scratch AS prebuilt
COPY .image-prebuilt/ /out/

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_BASE} AS runtime
COPY --from=binaries /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -q && \
    DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
      apt-get install -y -q --no-install-recommends && \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/runtime-packages.txt && \
    groupadd --system --gid 10001 fedmi && \
    useradd --system --uid 10001 --gid fedmi --home-dir /var/lib/fedmi \
            --shell /usr/sbin/nologin fedmi && \
    mkdir -p /var/lib/fedmi /etc/fedmi /data && \
    chown fedmi:fedmi /var/lib/fedmi && chmod 0700 /var/lib/fedmi
COPY --from=binaries /out/bin/ /usr/local/bin/

# gRPC's own resolver (c-ares) ignores /etc/hosts entries on some minimal
# systems; the system resolver honours /etc/hosts, DNS and search domains.
ENV GRPC_DNS_RESOLVER=native
USER 10001:10001
# State: the coordinator's SQLite database, models and spool, or a site's
# receipts, privacy ledger and approvals. Kits are mounted read-only under
# /etc/fedmi/<party>/, a site's images under /data.
WORKDIR /var/lib/fedmi
VOLUME ["/var/lib/fedmi"]
# 7000: the coordinator's gRPC port (mutual TLS); 8443: its --http listener
# (HTTPS, admin or auditor certificates only on a non-loopback address).
EXPOSE 7000 8443
CMD ["fedmi", "--help"]
