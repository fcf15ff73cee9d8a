package dev.k2pekko.ops.cuda;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.PhantomReference;
import java.lang.ref.ReferenceQueue;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A caching pool of device memory. Sizes are rounded to a class (512 B steps up to 1 MiB, 2 MiB steps
 * above) and freed blocks wait in a free list of their class for the next request of that class, so a
 * training loop that allocates the same shapes every step stops calling cudaMalloc after its first steps.
 *
 * <p>Tensors are immutable Java objects without an explicit free: a block goes back to the pool when its
 * owner becomes unreachable (a phantom reference, drained on every allocation). Work is queued on one
 * stream, so a block reused by a later kernel is only touched after every earlier kernel that read it.
 * When the pool's reserve would pass its limit (80% of the device memory free at start, or
 * {@code K2_CUDA_POOL_GB}), the allocator asks the JVM for a (full) collection, at most once per eighth of
 * the limit requested and not found in the free lists, drains again, and if its size is still missing frees
 * cached blocks of other sizes; when
 * cudaMalloc itself fails it also returns every cached block to the driver and retries; only then does it
 * fail. A small young generation ({@code -Xmn8m}) lets minor collections find dead tensors long before the
 * limit, which is much cheaper than the full collection (docs/CUDA.md). A tensor can also be freed
 * explicitly ({@link #free}; CudaOps does it for the temporaries of a {@code TensorOps.Scope}), which
 * returns its blocks at once and keeps them out of the collections' way.
 */
final class DeviceMemory {
  /** A pooled block: what the phantom reference of its owner keeps, so the owner can go. */
  static final class Block {
    final long ptr, bytes;
    /** The phantom reference that returns this block when its owner dies, or null for a scratch block. */
    private Ref ref;
    Block(long ptr, long bytes) {
      this.ptr = ptr;
      this.bytes = bytes;
    }
  }

  private static final class Ref extends PhantomReference<Object> {
    final Block[] blocks;
    Ref(Object owner, ReferenceQueue<Object> q, Block[] blocks) {
      super(owner, q);
      this.blocks = blocks;
    }
  }

  private final CudaDevice device;
  private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
  private final ReferenceQueue<Object> queue = new ReferenceQueue<>();
  private final Set<Ref> live = ConcurrentHashMap.newKeySet();
  private final long limit;
  private long reserved, inUse, peak, mallocs, collections, evictions, missedSinceCollect, collectNanos, explicitFrees;

  DeviceMemory(CudaDevice device) {
    this.device = device;
    String gb = System.getenv("K2_CUDA_POOL_GB");
    long freeBytes = device.cuda.memInfo()[0];
    limit = gb != null && !gb.isBlank() ? (long) (Double.parseDouble(gb) * (1L << 30)) : (long) (freeBytes * 0.8);
  }

  static long sizeClass(long bytes) {
    long b = Math.max(bytes, 1);
    return b <= (1 << 20) ? (b + 511) / 512 * 512 : (b + (2 << 20) - 1) / (2 << 20) * (2 << 20);
  }

  /** A block of at least bytes, owned by owner: it returns to the pool once owner is unreachable. */
  synchronized Block allocate(long bytes, Object owner) {
    Block b = take(bytes);
    attach(owner, b);
    return b;
  }

  /** A block that the caller returns with {@link #release} (scratch space inside one op). */
  synchronized Block take(long bytes) {
    drain();
    long cls = sizeClass(bytes);
    Long ptr = poll(cls);
    if (ptr == null) {
      // a miss: only misses count towards the next collection, so a pool whose requests are served from its
      // free lists (a step's temporaries freed by a scope and taken again next step) never collects
      missedSinceCollect += cls;
      if (reserved + cls > limit) {
        // at the limit: collect, but at most once per eighth of the limit missed, so a pool full of other
        // sizes does not collect on every request; else evict cached blocks of other sizes, and collect after
        // all when there are too few of them to stay under the limit
        boolean collected = false;
        if (missedSinceCollect > limit / 8) {
          collect();
          collected = true;
          ptr = poll(cls);
        }
        if (ptr == null && evict(reserved + cls - limit) < reserved + cls - limit && !collected) {
          collect();
          ptr = poll(cls);
        }
      }
    }
    if (ptr == null) ptr = malloc(cls); // trims the whole cache and retries if the device is full
    inUse += cls;
    peak = Math.max(peak, inUse);
    return new Block(ptr, cls);
  }

  /** cudaFree on cached free blocks, largest classes first, until at least bytes are returned; the bytes returned. */
  private long evict(long bytes) {
    var classes = new java.util.ArrayList<>(free.keySet());
    classes.sort(java.util.Comparator.reverseOrder());
    long done = 0;
    for (Long c : classes) {
      ArrayDeque<Long> list = free.get(c);
      while (done < bytes && !list.isEmpty()) {
        cudaFree(list.poll());
        reserved -= c;
        done += c;
        evictions++;
      }
      if (done >= bytes) break;
    }
    return done;
  }

  private Long poll(long cls) {
    ArrayDeque<Long> list = free.get(cls);
    return list == null ? null : list.poll();
  }

  synchronized void release(Block b) {
    inUse -= b.bytes;
    free.computeIfAbsent(b.bytes, k -> new ArrayDeque<>()).push(b.ptr);
  }

  /** Ties more blocks to an owner (a tensor's bf16 copy, made after the tensor). */
  synchronized void attach(Object owner, Block b) {
    b.ref = new Ref(owner, queue, new Block[] {b});
    live.add(b.ref);
  }

  /**
   * Returns an owned block to the pool now, before its owner dies (an explicit free; the owner must not use it
   * again). Work on the one stream stays ordered, so the block's next user runs after every kernel queued
   * before. Returns false if it was already returned.
   */
  synchronized boolean free(Block b) {
    Ref r = b.ref;
    if (r == null || !live.remove(r)) return false;
    r.clear(); // never enqueued now, so the block is not returned twice
    release(b);
    explicitFrees++;
    return true;
  }

  private void drain() {
    for (Ref r; (r = (Ref) queue.poll()) != null; ) {
      live.remove(r);
      for (Block b : r.blocks) release(b);
    }
  }

  /**
   * Asks for a collection, then takes back what it freed: references are queued by the JVM's reference
   * handler right after the collection, so this waits only until the queue has been quiet for 2 ms.
   */
  private void collect() {
    collections++;
    missedSinceCollect = 0;
    long t0 = System.nanoTime();
    System.gc();
    long deadline = System.nanoTime() + 200_000_000L;
    try {
      while (System.nanoTime() < deadline) {
        Ref r = (Ref) queue.remove(2);
        if (r == null) break;
        live.remove(r);
        for (Block b : r.blocks) release(b);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    drain();
    collectNanos += System.nanoTime() - t0;
  }

  synchronized void collectAndTrim() {
    collect();
    trim();
  }

  /** Returns every cached free block to the driver (cudaFree waits for the device). */
  private void trim() {
    for (var e : free.entrySet()) {
      for (Long p : e.getValue()) {
        cudaFree(p);
        reserved -= e.getKey();
      }
    }
    free.clear();
  }

  private long malloc(long bytes) {
    device.makeCurrent();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment p = a.allocate(JAVA_LONG);
      int s = (int) device.cuda.cudaMalloc.invokeExact(p, bytes);
      if (s != 0) {
        collect();
        trim();
        s = (int) device.cuda.cudaMalloc.invokeExact(p, bytes);
        device.cuda.rt("cudaMalloc(" + bytes + ") with " + (inUse >> 20) + " MiB in use", s);
      }
      mallocs++;
      reserved += bytes;
      return p.get(JAVA_LONG, 0);
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  private void cudaFree(long p) {
    try {
      device.cuda.rt("cudaFree", (int) device.cuda.cudaFree.invokeExact(p));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  synchronized long collections() {
    return collections;
  }

  synchronized double collectMs() {
    return collectNanos / 1e6;
  }

  /** "reserved 12.0 GiB, in use 3.1 GiB, peak 9.0 GiB, 812 cudaMalloc calls, 3 collections ...". */
  synchronized String stats() {
    return String.format(java.util.Locale.ROOT,
        "reserved %.1f GiB, in use %.1f GiB, peak %.1f GiB, %d cudaMalloc calls, %d evicted, %d collections taking %.0f ms, %d blocks freed explicitly",
        reserved / 1073741824.0, inUse / 1073741824.0, peak / 1073741824.0, mallocs, evictions, collections, collectNanos / 1e6,
        explicitFrees);
  }
}
