import Items from './items';

// Rendered on every request: APP_VERSION / APP_COLOUR come from the container's env
// at run time, never from the build.
export const dynamic = 'force-dynamic';

// Server-side call to the backend of the same release (BACKEND_URL, e.g. http://backend-blue-1a2b3c4d:8080).
// Browser code never uses BACKEND_URL: it calls relative /api/... through the edge.
async function initialItems() {
  const base = process.env.BACKEND_URL;
  if (!base) return { items: [], error: null };
  try {
    const res = await fetch(`${base.replace(/\/$/, '')}/api/items?limit=50`, {
      cache: 'no-store',
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
  const { items, error } = await initialItems();
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
