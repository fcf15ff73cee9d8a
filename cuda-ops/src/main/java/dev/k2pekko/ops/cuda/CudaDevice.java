package dev.k2pekko.ops.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One GPU as the CUDA backend uses it: its primary context, one stream that every kernel, copy and GEMM of
 * the backend is queued on (so stream order alone makes reuse of pooled memory safe), a cuBLAS handle on that
 * stream, the memory pool, and the kernels compiled from this package's CUDA C sources by NVRTC for the
 * device's architecture. Compiled CUBINs are cached in memory and on disk under
 * {@code ~/.cache/k2-pekko/cuda} (or {@code $K2_CUDA_CACHE}), keyed by a hash of source, options and arch.
 */
public final class CudaDevice {
  final Cuda cuda;
  final int ordinal;
  final long context, stream, cublas;
  final int ccMajor, ccMinor, smCount;
  final String name;
  final DeviceMemory memory;
  private final Map<String, Long> modules = new ConcurrentHashMap<>();
  private final Map<String, Long> functions = new ConcurrentHashMap<>();
  private final ThreadLocal<Boolean> current = ThreadLocal.withInitial(() -> false);
  /** Kernel arguments' values: 8 bytes each, or more for a table of 64-bit words passed by value (see {@link #launch}). */
  private static final long ARG_BYTES = 4096;
  private final MemorySegment argSlots = Arena.global().allocate(ARG_BYTES, 16);
  private final MemorySegment argPtrs = Arena.global().allocate(ADDRESS, 32);
  private final MemorySegment scratch = Arena.global().allocate(64, 16);
  /** Milliseconds spent compiling kernels with NVRTC in this JVM (cache hits cost none). */
  volatile double compileMs;

  private static volatile CudaDevice first;

  /** Device 0, opened once. */
  public static CudaDevice get() {
    CudaDevice d = first;
    if (d != null) return d;
    synchronized (CudaDevice.class) {
      if (first == null) first = new CudaDevice(Cuda.load(), 0);
      return first;
    }
  }

  private CudaDevice(Cuda cuda, int ordinal) {
    this.cuda = cuda;
    this.ordinal = ordinal;
    try (Arena a = Arena.ofConfined()) {
      if (cuda.deviceCount() <= ordinal) throw new CudaException("no CUDA device " + ordinal);
      cuda.rt("cudaSetDevice", (int) cuda.cudaSetDevice.invokeExact(ordinal));
      cuda.drv("cuInit", (int) cuda.cuInit.invokeExact(0));
      MemorySegment p = a.allocate(JAVA_LONG);
      cuda.drv("cuDeviceGet", (int) cuda.cuDeviceGet.invokeExact(p, ordinal));
      int dev = p.get(JAVA_INT, 0);
      cuda.drv("cuDevicePrimaryCtxRetain", (int) cuda.cuDevicePrimaryCtxRetain.invokeExact(p, dev));
      context = p.get(JAVA_LONG, 0);
      MemorySegment nameBuf = a.allocate(256);
      cuda.drv("cuDeviceGetName", (int) cuda.cuDeviceGetName.invokeExact(nameBuf, 256, dev));
      name = nameBuf.getString(0);
      makeCurrent();
      cuda.rt("cudaStreamCreateWithFlags", (int) cuda.cudaStreamCreateWithFlags.invokeExact(p, 1));
      stream = p.get(JAVA_LONG, 0);
      Cuda.blas("cublasCreate", (int) cuda.cublasCreate.invokeExact(p));
      cublas = p.get(JAVA_LONG, 0);
      Cuda.blas("cublasSetStream", (int) cuda.cublasSetStream.invokeExact(cublas, stream));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
    ccMajor = cuda.attribute(Cuda.ATTR_CC_MAJOR, ordinal);
    ccMinor = cuda.attribute(Cuda.ATTR_CC_MINOR, ordinal);
    smCount = cuda.attribute(Cuda.ATTR_SM_COUNT, ordinal);
    memory = new DeviceMemory(this);
  }

  /** Makes the primary context current on the calling thread (once per thread). */
  void makeCurrent() {
    if (current.get()) return;
    try {
      cuda.drv("cuCtxSetCurrent", (int) cuda.cuCtxSetCurrent.invokeExact(context));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
    current.set(true);
  }

  public double compileMs() {
    return compileMs;
  }

  public String name() {
    return name;
  }

  public String arch() {
    return "sm_" + ccMajor + ccMinor;
  }

  /** "driver 13.0, runtime 13.0, cuBLAS 130100, NVRTC 13.0" as the libraries report them. */
  public String versions() {
    try (Arena a = Arena.ofConfined()) {
      int drvV = cuda.intQuery(cuda.cudaDriverGetVersion, "cudaDriverGetVersion");
      int rtV = cuda.intQuery(cuda.cudaRuntimeGetVersion, "cudaRuntimeGetVersion");
      MemorySegment v = a.allocate(JAVA_INT), w = a.allocate(JAVA_INT);
      Cuda.blas("cublasGetVersion", (int) cuda.cublasGetVersion.invokeExact(cublas, v));
      int blasV = v.get(JAVA_INT, 0);
      int s = (int) cuda.nvrtcVersion.invokeExact(v, w);
      String rtc = s == 0 ? v.get(JAVA_INT, 0) + "." + w.get(JAVA_INT, 0) : "?";
      return "CUDA driver API " + drvV / 1000 + "." + drvV % 1000 / 10 + ", runtime " + rtV / 1000 + "." + rtV % 1000 / 10
          + ", cuBLAS " + blasV + ", NVRTC " + rtc;
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  public void synchronize() {
    makeCurrent();
    try {
      cuda.rt("cudaStreamSynchronize", (int) cuda.cudaStreamSynchronize.invokeExact(stream));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  // ---- copies ----

  void copyAsync(long dst, long src, long bytes, int kind) {
    if (bytes == 0) return;
    makeCurrent();
    try {
      cuda.rt("cudaMemcpyAsync", (int) cuda.cudaMemcpyAsync.invokeExact(dst, src, bytes, kind, stream));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  void memsetAsync(long dst, int value, long bytes) {
    if (bytes == 0) return;
    makeCurrent();
    try {
      cuda.rt("cudaMemsetAsync", (int) cuda.cudaMemsetAsync.invokeExact(dst, value, bytes, stream));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  /** Host floats to device (queued; the host copy is staged by the driver before this returns). */
  void upload(long dst, float[] src) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocateFrom(JAVA_FLOAT, src);
      // from pageable memory the copy is staged before cudaMemcpyAsync returns, so the arena may close
      copyAsync(dst, h.address(), 4L * src.length, Cuda.H2D);
    }
  }

  void upload(long dst, int[] src) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocateFrom(JAVA_INT, src);
      copyAsync(dst, h.address(), 4L * src.length, Cuda.H2D);
    }
  }

  /** Host longs (device pointers) to device, as {@link #upload(long, int[])}. */
  void upload(long dst, long[] src) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocateFrom(JAVA_LONG, src);
      copyAsync(dst, h.address(), 8L * src.length, Cuda.H2D);
    }
  }

  float[] downloadFloats(long src, int n) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocate(4L * Math.max(n, 1), 16);
      copyAsync(h.address(), src, 4L * n, Cuda.D2H);
      synchronize();
      return h.asSlice(0, 4L * n).toArray(JAVA_FLOAT);
    }
  }

  short[] downloadShorts(long src, int n) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocate(2L * Math.max(n, 1), 16);
      copyAsync(h.address(), src, 2L * n, Cuda.D2H);
      synchronize();
      return h.asSlice(0, 2L * n).toArray(JAVA_SHORT);
    }
  }

  int[] downloadInts(long src, int n) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocate(4L * Math.max(n, 1), 16);
      copyAsync(h.address(), src, 4L * n, Cuda.D2H);
      synchronize();
      return h.asSlice(0, 4L * n).toArray(JAVA_INT);
    }
  }

  double downloadDouble(long src) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment h = a.allocate(8, 16);
      copyAsync(h.address(), src, 8, Cuda.D2H);
      synchronize();
      return h.get(java.lang.foreign.ValueLayout.JAVA_DOUBLE, 0);
    }
  }

  // ---- GEMM ----

  /**
   * Row-major out (M,N) = alpha op(a) op(b) + beta out through cublasGemmEx with fp32 accumulation
   * (CUBLAS_COMPUTE_32F, tensor-op algorithm). Row-major X is column-major X^T, so cuBLAS computes
   * out^T = op(b)^T op(a)^T. a, b are of aType/bType (CUDA_R_16BF or CUDA_R_32F), out of outType.
   */
  synchronized void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int aType, long b,
      int bType, float beta, long out, int outType) {
    makeCurrent();
    int lda = transA ? m : k, ldb = transB ? k : n;
    scratch.set(JAVA_FLOAT, 0, alpha);
    scratch.set(JAVA_FLOAT, 8, beta);
    try {
      Cuda.blas("cublasGemmEx", (int) cuda.cublasGemmEx.invokeExact(cublas, transB ? Cuda.CUBLAS_OP_T : Cuda.CUBLAS_OP_N,
          transA ? Cuda.CUBLAS_OP_T : Cuda.CUBLAS_OP_N, n, m, k, scratch.asSlice(0, 4), b, bType, ldb, a, aType, lda,
          scratch.asSlice(8, 4), out, outType, n, Cuda.CUBLAS_COMPUTE_32F, Cuda.CUBLAS_GEMM_DEFAULT_TENSOR_OP));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  /**
   * {@link #gemm} on {@code batch} same-shaped problems in one cublasGemmStridedBatchedEx: problem i reads
   * a + i*strideA, b + i*strideB and writes out + i*strideOut (strides in elements of each operand's type).
   */
  synchronized void gemmStridedBatched(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int aType,
      long strideA, long b, int bType, long strideB, float beta, long out, int outType, long strideOut, int batch) {
    makeCurrent();
    int lda = transA ? m : k, ldb = transB ? k : n;
    scratch.set(JAVA_FLOAT, 0, alpha);
    scratch.set(JAVA_FLOAT, 8, beta);
    try {
      Cuda.blas("cublasGemmStridedBatchedEx", (int) cuda.cublasGemmStridedBatchedEx.invokeExact(cublas,
          transB ? Cuda.CUBLAS_OP_T : Cuda.CUBLAS_OP_N, transA ? Cuda.CUBLAS_OP_T : Cuda.CUBLAS_OP_N, n, m, k, scratch.asSlice(0, 4),
          b, bType, ldb, strideB, a, aType, lda, strideA, scratch.asSlice(8, 4), out, outType, n, strideOut, batch,
          Cuda.CUBLAS_COMPUTE_32F, Cuda.CUBLAS_GEMM_DEFAULT_TENSOR_OP));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  // ---- kernels ----

  /** The CUfunction of kernel fn in source file src (a resource of this package), compiled with the given -D defines. */
  long function(String src, List<String> defines, String fn) {
    String key = src + defines + "#" + fn;
    Long f = functions.get(key);
    if (f != null) return f;
    synchronized (this) {
      f = functions.get(key);
      if (f != null) return f;
      long module = module(src, defines);
      makeCurrent();
      try (Arena a = Arena.ofConfined()) {
        MemorySegment p = a.allocate(JAVA_LONG);
        cuda.drv("cuModuleGetFunction " + fn, (int) cuda.cuModuleGetFunction.invokeExact(p, module, a.allocateFrom(fn)));
        f = p.get(JAVA_LONG, 0);
      } catch (Throwable t) {
        throw Cuda.rethrow(t);
      }
      functions.put(key, f);
      return f;
    }
  }

  /** Raises a kernel's dynamic shared memory limit when it asks for more than the default 48 KB. */
  void allowSharedMemory(long function, int bytes) {
    if (bytes <= 48 * 1024) return;
    try {
      cuda.drv("cuFuncSetAttribute", (int) cuda.cuFuncSetAttribute.invokeExact(function,
          Cuda.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  private long module(String src, List<String> defines) {
    String key = src + defines;
    Long m = modules.get(key);
    if (m != null) return m;
    byte[] cubin = cubin(src, defines);
    makeCurrent();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment p = a.allocate(JAVA_LONG);
      MemorySegment image = a.allocate(cubin.length + 1L, 16);
      image.copyFrom(MemorySegment.ofArray(cubin));
      cuda.drv("cuModuleLoadData " + src, (int) cuda.cuModuleLoadData.invokeExact(p, image));
      m = p.get(JAVA_LONG, 0);
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
    modules.put(key, m);
    return m;
  }

  private byte[] cubin(String src, List<String> defines) {
    String source;
    try (InputStream in = CudaDevice.class.getResourceAsStream(src)) {
      if (in == null) throw new CudaException("kernel source " + src + " missing from the jar");
      source = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new CudaException("reading " + src + ": " + e);
    }
    var options = new java.util.ArrayList<String>(List.of("--gpu-architecture=" + arch(), "--std=c++17", "-default-device"));
    for (String d : defines) options.add("-D" + d);
    String hash;
    try {
      var md = MessageDigest.getInstance("SHA-256");
      md.update(source.getBytes(StandardCharsets.UTF_8));
      md.update(String.join(" ", options).getBytes(StandardCharsets.UTF_8));
      md.update(versions().getBytes(StandardCharsets.UTF_8));
      hash = HexFormat.of().formatHex(md.digest()).substring(0, 24);
    } catch (Exception e) {
      throw new CudaException(e.toString());
    }
    Path dir = cacheDir();
    Path file = dir == null ? null : dir.resolve(hash + ".cubin");
    if (file != null && Files.isRegularFile(file)) {
      try {
        return Files.readAllBytes(file);
      } catch (IOException ignored) {
        // recompile below
      }
    }
    long t0 = System.nanoTime();
    byte[] bin = compile(source, src, options);
    compileMs += (System.nanoTime() - t0) / 1e6;
    if (file != null) {
      try {
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, hash, ".tmp");
        Files.write(tmp, bin);
        Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException ignored) {
        // a cache we cannot write only costs a recompile next time
      }
    }
    return bin;
  }

  private static Path cacheDir() {
    String env = System.getenv("K2_CUDA_CACHE");
    if (env != null && !env.isBlank()) return Path.of(env);
    String home = System.getProperty("user.home");
    return home == null ? null : Path.of(home, ".cache", "k2-pekko", "cuda");
  }

  private byte[] compile(String source, String name, List<String> options) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment prog = a.allocate(JAVA_LONG);
      int s = (int) cuda.nvrtcCreateProgram.invokeExact(prog, a.allocateFrom(source), a.allocateFrom(name), 0,
          MemorySegment.NULL, MemorySegment.NULL);
      if (s != 0) throw new CudaException("nvrtcCreateProgram: " + cuda.nvrtcError(s));
      long p = prog.get(JAVA_LONG, 0);
      MemorySegment opts = a.allocate(ADDRESS, options.size());
      for (int i = 0; i < options.size(); i++) opts.setAtIndex(ADDRESS, i, a.allocateFrom(options.get(i)));
      int cs = (int) cuda.nvrtcCompileProgram.invokeExact(p, options.size(), opts);
      MemorySegment size = a.allocate(JAVA_LONG);
      String log = "";
      if ((int) cuda.nvrtcGetProgramLogSize.invokeExact(p, size) == 0 && size.get(JAVA_LONG, 0) > 1) {
        MemorySegment l = a.allocate(size.get(JAVA_LONG, 0));
        int ignored = (int) cuda.nvrtcGetProgramLog.invokeExact(p, l);
        log = l.getString(0);
      }
      if (cs != 0) throw new CudaException("NVRTC could not compile " + name + " " + options + ": " + cuda.nvrtcError(cs) + "\n" + log);
      int gs = (int) cuda.nvrtcGetCUBINSize.invokeExact(p, size);
      if (gs != 0) throw new CudaException("nvrtcGetCUBINSize: " + cuda.nvrtcError(gs));
      MemorySegment bin = a.allocate(size.get(JAVA_LONG, 0));
      int bs = (int) cuda.nvrtcGetCUBIN.invokeExact(p, bin);
      if (bs != 0) throw new CudaException("nvrtcGetCUBIN: " + cuda.nvrtcError(bs));
      int ds = (int) cuda.nvrtcDestroyProgram.invokeExact(prog);
      return bin.toArray(JAVA_BYTE);
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  /**
   * Queues kernel f on the stream. Arguments: Long (a device pointer or a 64-bit integer), Integer, Float, or long[]
   * (a struct of that many 64-bit words passed by value, e.g. a table of device pointers: the kernel's parameter must
   * be exactly that size). Each must match the kernel's parameter type. Values passed by value are copied by
   * cuLaunchKernel, so nothing is uploaded and nothing waits (the kernel parameter space holds 4 KB in all).
   */
  synchronized void launch(long f, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes, Object... args) {
    makeCurrent();
    if (args.length > 32) throw new IllegalArgumentException("too many kernel arguments");
    long off = 0;
    for (int i = 0; i < args.length; i++) {
      long size = args[i] instanceof long[] words ? 8L * words.length : 8;
      if (off + size > ARG_BYTES) throw new IllegalArgumentException("kernel arguments over " + ARG_BYTES + " bytes");
      switch (args[i]) {
        case Long l -> argSlots.set(JAVA_LONG, off, l);
        case Integer n -> argSlots.set(JAVA_INT, off, n);
        case Float x -> argSlots.set(JAVA_FLOAT, off, x);
        case long[] words -> MemorySegment.copy(words, 0, argSlots, JAVA_LONG, off, words.length);
        default -> throw new IllegalArgumentException("kernel argument " + args[i]);
      }
      argPtrs.setAtIndex(ADDRESS, i, argSlots.asSlice(off));
      off += size;
    }
    try {
      cuda.drv("cuLaunchKernel", (int) cuda.cuLaunchKernel.invokeExact(f, gx, gy, gz, bx, by, bz, sharedBytes, stream,
          argPtrs, MemorySegment.NULL));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  // ---- events, for timing ----

  /** A CUDA event, for timing work on this device's stream. */
  public long event() {
    makeCurrent();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment p = a.allocate(JAVA_LONG);
      cuda.rt("cudaEventCreate", (int) cuda.cudaEventCreate.invokeExact(p));
      return p.get(JAVA_LONG, 0);
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  public void record(long event) {
    try {
      cuda.rt("cudaEventRecord", (int) cuda.cudaEventRecord.invokeExact(event, stream));
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }

  /** Milliseconds between two recorded events, waiting for the second. */
  public float elapsedMs(long start, long end) {
    try (Arena a = Arena.ofConfined()) {
      cuda.rt("cudaEventSynchronize", (int) cuda.cudaEventSynchronize.invokeExact(end));
      MemorySegment ms = a.allocate(JAVA_FLOAT);
      cuda.rt("cudaEventElapsedTime", (int) cuda.cudaEventElapsedTime.invokeExact(ms, start, end));
      return ms.get(JAVA_FLOAT, 0);
    } catch (Throwable t) {
      throw Cuda.rethrow(t);
    }
  }
}
