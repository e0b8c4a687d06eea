'use client';

import { useCallback, useEffect, useState } from 'react';

// Browser-side calls use relative URLs; the edge routes /api/ to the live backend.
async function api(path, options) {
  const res = await fetch(path, { cache: 'no-store', ...options });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body;
}

export default function Items({ initialItems, initialError }) {
  const [items, setItems] = useState(initialItems || []);
  const [error, setError] = useState(initialError);
  const [backend, setBackend] = useState(null);
  const [name, setName] = useState('');
  const [query, setQuery] = useState('');
  const [results, setResults] = useState(null);
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(async () => {
    try {
      setItems(await api('/api/items?limit=50'));
      setError(null);
    } catch (e) {
      setError(`could not load items: ${e.message}`);
    }
  }, []);

  useEffect(() => {
    refresh();
    api('/api/version').then(setBackend, () => setBackend(null));
  }, [refresh]);

  async function add(e) {
    e.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    try {
      await api('/api/items', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: name.trim() }),
      });
      setName('');
      await refresh();
    } catch (err) {
      setError(`could not add item: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  async function search(e) {
    e.preventDefault();
    if (!query.trim()) {
      setResults(null);
      return;
    }
    try {
      setResults(await api(`/api/items/search?k=5&q=${encodeURIComponent(query.trim())}`));
      setError(null);
    } catch (err) {
      setError(`search failed: ${err.message}`);
    }
  }

  return (
    <section>
      <p className="muted">
        Backend:{' '}
        {backend ? `version ${backend.version}, colour ${backend.colour}` : 'not reachable via /api'}
      </p>
      {error && <p className="error">{error}</p>}

      <h2>Add an item</h2>
      <form onSubmit={add}>
        <input type="text" value={name} onChange={(e) => setName(e.target.value)} placeholder="Item name" maxLength={500} />
        <button type="submit" disabled={busy}>Add</button>
      </form>

      <h2>Search</h2>
      <form onSubmit={search}>
        <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Similar to…" />
        <button type="submit">Search</button>
      </form>
      {results && (
        <ol>
          {results.map((it) => (
            <li key={it.id}>
              {it.name} <span className="muted">(distance {Number(it.distance).toFixed(3)})</span>
            </li>
          ))}
          {results.length === 0 && <li className="muted">no results</li>}
        </ol>
      )}

      <h2>Items</h2>
      <ul>
        {items.map((it) => (
          <li key={it.id}>
            {it.name} <span className="muted">#{it.id} · {it.created}</span>
          </li>
        ))}
        {items.length === 0 && <li className="muted">no items yet</li>}
      </ul>
    </section>
  );
}
