// Keeping trained models: a file to download, and the last model of each kind in this browser
// (IndexedDB), offered again on the next visit. The bytes are the lab's model file, the same
// format the command line's `train --save` writes.

const DB_NAME = 'autoencoder-lab';
const STORE = 'models';

function openDb() {
  return new Promise((resolve, reject) => {
    if (!window.indexedDB) {
      reject(new Error('this browser keeps no data for pages (IndexedDB is off)'));
      return;
    }
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB did not open'));
    req.onblocked = () => reject(new Error('another tab holds an old version of the saved models'));
  });
}

async function transact(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB refused the change'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB gave up (is the disk full?)'));
    });
  } finally {
    db.close();
  }
}

/** Keeps `bytes` (a model file) as the last model of `kind`, with a summary for the offer. */
export function keepModel(kind, bytes, summary) {
  const entry = { kind, bytes, summary, savedAt: new Date().toISOString() };
  return transact('readwrite', (store) => store.put(entry, kind));
}

/** The kept model of `kind`, or null. */
export async function keptModel(kind) {
  return (await transact('readonly', (store) => store.get(kind))) ?? null;
}

/** Offers `bytes` as a file download named `name`. */
export function downloadFile(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has its own copy once click() returns; the URL can go.
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A chosen file's bytes; refuses files larger than `maxBytes` before reading them. */
export async function readFile(file, maxBytes) {
  if (file.size > maxBytes) {
    throw new Error(`${file.name} is ${(file.size / 1e6).toFixed(1)} MB; a model file here is under 1 MB, so this is not one`);
  }
  return new Uint8Array(await file.arrayBuffer());
}
