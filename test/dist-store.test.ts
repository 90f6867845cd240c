// The rendezvous store (lib/dist/store.ts), server and clients in this process over 127.0.0.1.
import { StoreClient, StoreServer } from '../lib/dist/store';
import { freePort } from '../lib/dist/launch';

const client = (port: number, worldSize = 2, timeout = 5) =>
  StoreClient.connect({ host: '127.0.0.1', port, worldSize, connectTimeout: 5, timeout });

describe('rendezvous store', () => {
  let server: StoreServer;
  beforeEach(async () => {
    server = await StoreServer.listen(0, '127.0.0.1');
  });
  afterEach(() => server.close());

  test('set/get round-trips bytes; get waits for a key set later', async () => {
    const [a, b] = await Promise.all([client(server.port), client(server.port)]);
    await a.set('bytes', Uint8Array.from([0, 1, 255]));
    expect([...(await b.get('bytes'))]).toEqual([0, 1, 255]);
    const later = b.getString('later');
    await a.set('later', 'hello');
    expect(await later).toBe('hello');
    a.close();
    b.close();
  });

  test('add counts across clients; wait resolves once every key exists', async () => {
    const [a, b] = await Promise.all([client(server.port), client(server.port)]);
    expect(await a.add('n', 2)).toBe(2);
    expect(await b.add('n', 3)).toBe(5);
    const waiting = a.wait(['x', 'y']);
    await b.set('x', '1');
    await b.set('y', '2');
    await expect(waiting).resolves.toBeUndefined();
    a.close();
    b.close();
  });

  test('barrier releases all ranks together, repeatedly', async () => {
    const clients = await Promise.all([0, 1, 2].map(() => client(server.port, 3)));
    const order: string[] = [];
    for (let round = 0; round < 2; round++) {
      await Promise.all(clients.map(async (c, i) => {
        await new Promise((r) => setTimeout(r, 20 * i)); // arrive at different times
        order.push(`arrive ${round}`);
        await c.barrier('test');
        order.push(`leave ${round}`);
      }));
    }
    expect(order).toEqual([...Array(3).fill('arrive 0'), ...Array(3).fill('leave 0'), ...Array(3).fill('arrive 1'),
      ...Array(3).fill('leave 1')]);
    clients.forEach((c) => c.close());
  });

  test('timeouts name the operation; a barrier timeout says how many ranks arrived', async () => {
    const a = await client(server.port, 2, 0.2);
    await expect(a.get('never')).rejects.toThrow(/get 'never' timed out after 0.2 s/);
    await expect(a.barrier('lonely')).rejects.toThrow(/barrier 'lonely' timed out after 0.2 s: 1 of 2 ranks arrived/);
    a.close();
  });

  test('a client retries until the server is up; a server that never comes gives a clear error', async () => {
    const port = await freePort();
    const connecting = client(port);
    await new Promise((r) => setTimeout(r, 300));
    const late = await StoreServer.listen(port, '127.0.0.1');
    const c = await connecting;
    await c.set('k', 'v');
    expect(await c.getString('k')).toBe('v');
    c.close();
    await late.close();
    await expect(StoreClient.connect({ host: '127.0.0.1', port, worldSize: 2, connectTimeout: 0.3, timeout: 1 }))
      .rejects.toThrow(/could not reach the store at 127.0.0.1:\d+ \(hosted by rank 0\) within 0.3 s/);
  });

  test('pending requests fail when the server goes away', async () => {
    const a = await client(server.port);
    const pending = a.get('missing');
    await server.close();
    await expect(pending).rejects.toThrow(/did rank 0 exit\?/);
    server = await StoreServer.listen(0, '127.0.0.1'); // for afterEach
  });

  test('a port in use is reported as such', async () => {
    await expect(StoreServer.listen(server.port, '127.0.0.1')).rejects.toThrow(/port is in use/);
  });
});
