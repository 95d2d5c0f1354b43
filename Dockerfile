# kooflow: one static binary; `kooflow api`, `kooflow worker` and `kooflow migrate` run from the same image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/kooflow ./cmd/kooflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kooflow /usr/local/bin/kooflow
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kooflow"]
CMD ["api"]
