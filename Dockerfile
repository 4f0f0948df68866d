# Roost production image: built TypeScript, production dependencies only.
# Node 22 LTS, the major .ci/run tests besides the default (test/unit/node-version.test.ts keeps them the same).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY server server
COPY cli cli
COPY lib lib
COPY broker broker
COPY api api
COPY auth auth
COPY bench bench
COPY test/helpers test/helpers
COPY ui ui
RUN npm run build

FROM node:22-bookworm-slim
ENV NODE_ENV=production
# The allocator returns large freed blocks to the system (cli/node-flags.ts, LAUNCH_ENV).
ENV GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072
# A container is reached from outside it: listen on every interface, which also ends the
# loopback-only mode (anonymous clients are refused; README "Devices, passwords and topic rules").
ENV ROOST_HOST=0.0.0.0 ROOST_API_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist dist
COPY schema schema
USER node
EXPOSE 1883 8883 8080 8081 3000
CMD ["node", "--max-semi-space-size=32", "dist/cli/cli.js", "start"]
