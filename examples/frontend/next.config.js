// Telemetry off for every next command (the Dockerfile also sets NEXT_TELEMETRY_DISABLED=1).
process.env.NEXT_TELEMETRY_DISABLED = '1';

/** @type {import('next').NextConfig} */
const nextConfig = {
  // Self-contained server in .next/standalone, started with `node server.js`.
  output: 'standalone',
  poweredByHeader: false,
  reactStrictMode: true,
  // This example uses no next/image: skip the optimizer and keep sharp/libvips
  // (~45 MB) out of the standalone bundle. Drop both lines if you use next/image.
  images: { unoptimized: true },
  outputFileTracingExcludes: { '*': ['node_modules/@img/**', 'node_modules/sharp/**'] },
};

module.exports = nextConfig;
