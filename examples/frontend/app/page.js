import { headers } from 'next/headers';
import Items from './items';

// Rendered on every request: APP_VERSION / APP_COLOUR come from the container's env
// at run time, never from the build.
export const dynamic = 'force-dynamic';

// Server-side call to the backend of the same release (BACKEND_URL, e.g. http://backend-blue-1a2b3c4d:8080).
// Browser code never uses BACKEND_URL: it calls relative /api/... through the edge.
// The call carries the page request's X-Request-ID, so the backend logs the same id.
async function initialItems(requestId) {
  const base = process.env.BACKEND_URL;
  if (!base) return { items: [], error: null };
  try {
    const res = await fetch(`${base.replace(/\/$/, '')}/api/items?limit=50`, {
      cache: 'no-store',
      headers: requestId ? { 'X-Request-ID': requestId } : {},
      signal: AbortSignal.timeout(2000),
    });
    if (!res.ok) return { items: [], error: `backend answered ${res.status}` };
    return { items: await res.json(), error: null };
  } catch (e) {
    return { items: [], error: `backend unreachable (${e.name})` };
  }
}

export default async function Page() {
  const version = process.env.APP_VERSION || 'dev';
  const colour = process.env.APP_COLOUR || 'unknown';
  // The edge's X-Request-ID (its access log has the same): one log line per page.
  const requestId = (await headers()).get('x-request-id');
  const { items, error } = await initialItems(requestId);
  console.log(`GET / ${error || `${items.length} items`} id=${requestId || '-'}`);
  return (
    <main>
      <h1>Deployer example</h1>
      <p>
        Frontend version <strong data-testid="version">{version}</strong>{' '}
        <span className={`badge ${['blue', 'green'].includes(colour) ? colour : 'unknown'}`} data-testid="colour">
          {colour}
        </span>
      </p>
      <Items initialItems={items} initialError={error} />
    </main>
  );
}
