# Multi-stage build of Pulseboard. Not built on the development machine (no Docker engine there):
# it runs the same commands as .ci/run and the README.
FROM swift:6.2-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-dev libsnappy-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources Sources
RUN swift build -c release --product pulseboard \
    && mkdir /out \
    && cp "$(swift build -c release --show-bin-path)/pulseboard" /out/ \
    && cp -R "$(swift build -c release --show-bin-path)/pulseboard_PulseboardApp.resources" \
             "$(swift build -c release --show-bin-path)/pulseboard_PulseboardWeb.resources" /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsqlite3-0 libsnappy1v5 libcurl4 libxml2 tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data pulseboard && mkdir /data && chown pulseboard /data
COPY --from=build /usr/lib/swift/linux/*.so* /usr/lib/swift/linux/
COPY --from=build /out/ /app/
ENV LD_LIBRARY_PATH=/usr/lib/swift/linux \
    PULSEBOARD_HOST=0.0.0.0 \
    PULSEBOARD_DATA_DIR=/data \
    PULSEBOARD_LOG_FORMAT=json
USER pulseboard
EXPOSE 8080
# The binary asks /health itself: the slim image has no curl, and its /bin/sh (dash) no /dev/tcp.
HEALTHCHECK CMD ["/app/pulseboard", "health"]
ENTRYPOINT ["/app/pulseboard"]
CMD ["serve"]
