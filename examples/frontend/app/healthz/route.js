// Health path for the deployer: GET /healthz -> 200 JSON, evaluated on every request.
export const dynamic = 'force-dynamic';

export function GET() {
  return Response.json(
    {
      status: 'ok',
      version: process.env.APP_VERSION || 'dev',
      colour: process.env.APP_COLOUR || 'unknown',
    },
    { headers: { 'Cache-Control': 'no-store' } },
  );
}
