# s3edge: a static binary on distroless, running as non-root, data in /data.
#
#   docker build -t s3edge .
#   docker run -p 127.0.0.1:9000:9000 -v s3edge-data:/data s3edge
#   docker run -p 127.0.0.1:9000:9000 -v s3edge-data:/data -v $PWD/s3edge.yaml:/etc/s3edge.yaml:ro \
#       s3edge serve --config /etc/s3edge.yaml --listen 0.0.0.0:9000 --data-dir /data

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/s3edge ./cmd/s3edge \
 && mkdir -p /out/data

# static-debian12 has CA certificates, tzdata and the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/s3edge /s3edge
# A new named volume copies this directory, owner included: writable by nonroot.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
EXPOSE 9000
ENTRYPOINT ["/s3edge"]
CMD ["serve", "--listen", "0.0.0.0:9000", "--data-dir", "/data"]
