package dev.k2pekko.ops.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * The CUDA libraries through FFM downcalls: the runtime (libcudart), the driver (libcuda, for modules and
 * kernel launches), cuBLAS and NVRTC. Every symbol is looked up once, when {@link #load()} runs; a missing
 * library or symbol fails there with one message that names what was tried, and nothing else in the JVM
 * depends on it, so the CPU backends stay usable. Each call's status is checked and turned into a
 * {@link CudaException} naming the function and the library's error string.
 */
public final class Cuda {
  static final Linker LINKER = Linker.nativeLinker();

  // cudaMemcpyKind
  static final int H2D = 1, D2H = 2, D2D = 3;
  // cudaDataType / cublasComputeType / cublasGemmAlgo / cublasOperation
  static final int CUDA_R_32F = 0, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99;
  static final int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
  // cudaDeviceAttr
  static final int ATTR_SM_COUNT = 16, ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76;
  static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

  private static volatile Cuda instance;
  private static volatile String failure;

  final MethodHandle cudaGetDeviceCount, cudaSetDevice, cudaDeviceGetAttribute, cudaMalloc, cudaFree, cudaMemcpyAsync,
      cudaMemsetAsync, cudaStreamCreateWithFlags, cudaStreamSynchronize, cudaGetErrorString, cudaMemGetInfo,
      cudaEventCreate, cudaEventRecord, cudaEventSynchronize, cudaEventElapsedTime, cudaDriverGetVersion,
      cudaRuntimeGetVersion, cudaDeviceSynchronize;
  final MethodHandle cuInit, cuDeviceGet, cuDevicePrimaryCtxRetain, cuCtxSetCurrent, cuModuleLoadData, cuModuleGetFunction,
      cuLaunchKernel, cuFuncSetAttribute, cuGetErrorName, cuDeviceGetName;
  final MethodHandle cublasCreate, cublasSetStream, cublasGemmEx, cublasGemmStridedBatchedEx, cublasGetVersion;
  final MethodHandle nvrtcCreateProgram, nvrtcCompileProgram, nvrtcGetProgramLogSize, nvrtcGetProgramLog, nvrtcGetCUBINSize,
      nvrtcGetCUBIN, nvrtcDestroyProgram, nvrtcVersion, nvrtcGetErrorString;

  final String libraries;

  private Cuda() {
    Arena global = Arena.global();
    var tried = new ArrayList<String>();
    SymbolLookup rt = open(global, tried, "libcudart.so.13", "libcudart.so.12", "libcudart.so");
    SymbolLookup drv = open(global, tried, "libcuda.so.1", "libcuda.so");
    SymbolLookup blas = open(global, tried, "libcublas.so.13", "libcublas.so.12", "libcublas.so");
    SymbolLookup rtc = open(global, tried, "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so");
    libraries = String.join(", ", tried);
    FunctionDescriptor iP = FunctionDescriptor.of(JAVA_INT, ADDRESS);
    cudaGetDeviceCount = fn(rt, "cudaGetDeviceCount", iP);
    cudaSetDevice = fn(rt, "cudaSetDevice", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    cudaDeviceGetAttribute = fn(rt, "cudaDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    cudaMalloc = fn(rt, "cudaMalloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    cudaFree = fn(rt, "cudaFree", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    cudaMemcpyAsync = fn(rt, "cudaMemcpyAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG));
    cudaMemsetAsync = fn(rt, "cudaMemsetAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
    cudaStreamCreateWithFlags = fn(rt, "cudaStreamCreateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cudaStreamSynchronize = fn(rt, "cudaStreamSynchronize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    cudaGetErrorString = fn(rt, "cudaGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    cudaMemGetInfo = fn(rt, "cudaMemGetInfo", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cudaEventCreate = fn(rt, "cudaEventCreate", iP);
    cudaEventRecord = fn(rt, "cudaEventRecord", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    cudaEventSynchronize = fn(rt, "cudaEventSynchronize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    cudaEventElapsedTime = fn(rt, "cudaEventElapsedTime", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    cudaDriverGetVersion = fn(rt, "cudaDriverGetVersion", iP);
    cudaRuntimeGetVersion = fn(rt, "cudaRuntimeGetVersion", iP);
    cudaDeviceSynchronize = fn(rt, "cudaDeviceSynchronize", FunctionDescriptor.of(JAVA_INT));

    cuInit = fn(drv, "cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    cuDeviceGet = fn(drv, "cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuDevicePrimaryCtxRetain = fn(drv, "cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    cuCtxSetCurrent = fn(drv, "cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
    cuModuleLoadData = fn(drv, "cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    cuModuleGetFunction = fn(drv, "cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
    cuLaunchKernel = fn(drv, "cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT,
        JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
    cuFuncSetAttribute = fn(drv, "cuFuncSetAttribute", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT));
    cuGetErrorName = fn(drv, "cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    cuDeviceGetName = fn(drv, "cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));

    cublasCreate = fn(blas, "cublasCreate_v2", iP);
    cublasSetStream = fn(blas, "cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
    cublasGetVersion = fn(blas, "cublasGetVersion_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    cublasGemmEx = fn(blas, "cublasGemmEx", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT,
        JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG,
        JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    // as cublasGemmEx, with a long long stride after each matrix's leading dimension and the batch count before
    // the compute type
    cublasGemmStridedBatchedEx = fn(blas, "cublasGemmStridedBatchedEx", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT,
        JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT,
        JAVA_LONG, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT));

    nvrtcCreateProgram = fn(rtc, "nvrtcCreateProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
    nvrtcCompileProgram = fn(rtc, "nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, ADDRESS));
    nvrtcGetProgramLogSize = fn(rtc, "nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    nvrtcGetProgramLog = fn(rtc, "nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    nvrtcGetCUBINSize = fn(rtc, "nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    nvrtcGetCUBIN = fn(rtc, "nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
    nvrtcDestroyProgram = fn(rtc, "nvrtcDestroyProgram", iP);
    nvrtcVersion = fn(rtc, "nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    nvrtcGetErrorString = fn(rtc, "nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
  }

  /**
   * The bound libraries, loaded on first use.
   *
   * @throws CudaException with one message naming the libraries tried when CUDA is missing
   */
  public static Cuda load() {
    Cuda c = instance;
    if (c != null) return c;
    synchronized (Cuda.class) {
      if (instance != null) return instance;
      if (failure != null) throw new CudaException(failure);
      try {
        instance = new Cuda();
        return instance;
      } catch (RuntimeException | LinkageError e) {
        failure = "CUDA is not available: " + e.getMessage()
            + " (needs libcudart, libcuda, libcublas and libnvrtc of CUDA 12 or 13 on the loader path; the CPU backends 'java' and 'nd4j' still work)";
        throw new CudaException(failure);
      }
    }
  }

  /** The reason CUDA cannot be used here, or null when a device is present and the libraries load. */
  public static String unavailableReason() {
    try {
      Cuda c = load();
      int n = c.deviceCount();
      return n > 0 ? null : "no CUDA device";
    } catch (CudaException e) {
      return e.getMessage();
    }
  }

  private static SymbolLookup open(Arena arena, List<String> tried, String... names) {
    var errors = new StringBuilder();
    for (String n : names) {
      try {
        SymbolLookup l = SymbolLookup.libraryLookup(n, arena);
        tried.add(n);
        return l;
      } catch (IllegalArgumentException e) {
        errors.append(errors.isEmpty() ? "" : ", ").append(n);
      }
    }
    throw new IllegalStateException("none of " + errors + " could be loaded");
  }

  private static MethodHandle fn(SymbolLookup lib, String name, FunctionDescriptor fd) {
    MemorySegment addr = lib.find(name).orElseThrow(() -> new IllegalStateException("symbol " + name + " not found"));
    return LINKER.downcallHandle(addr, fd);
  }

  // ---- status checks ----

  void rt(String what, int status) {
    if (status != 0) throw new CudaException(what + ": CUDA runtime error " + status + " (" + runtimeError(status) + ")");
  }

  void drv(String what, int status) {
    if (status != 0) throw new CudaException(what + ": CUDA driver error " + status + " (" + driverError(status) + ")");
  }

  static void blas(String what, int status) {
    if (status != 0) throw new CudaException(what + ": cuBLAS status " + status);
  }

  String runtimeError(int status) {
    try {
      return ((MemorySegment) cudaGetErrorString.invokeExact(status)).reinterpret(256).getString(0);
    } catch (Throwable t) {
      return "?";
    }
  }

  String driverError(int status) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment p = a.allocate(ADDRESS);
      int r = (int) cuGetErrorName.invokeExact(status, p);
      return r == 0 ? p.get(ADDRESS, 0).reinterpret(256).getString(0) : "?";
    } catch (Throwable t) {
      return "?";
    }
  }

  String nvrtcError(int status) {
    try {
      return ((MemorySegment) nvrtcGetErrorString.invokeExact(status)).reinterpret(256).getString(0);
    } catch (Throwable t) {
      return "?";
    }
  }

  static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException r) return r;
    if (t instanceof Error e) throw e;
    return new CudaException(t.toString());
  }

  // ---- small queries ----

  int deviceCount() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment n = a.allocate(JAVA_INT);
      int s = (int) cudaGetDeviceCount.invokeExact(n);
      return s == 0 ? n.get(JAVA_INT, 0) : 0; // "no device" and "insufficient driver" both mean none usable
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  int attribute(int attr, int device) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      rt("cudaDeviceGetAttribute", (int) cudaDeviceGetAttribute.invokeExact(v, attr, device));
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  int intQuery(MethodHandle h, String what) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment v = a.allocate(JAVA_INT);
      rt(what, (int) h.invokeExact(v));
      return v.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  long[] memInfo() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment f = a.allocate(JAVA_LONG), tot = a.allocate(JAVA_LONG);
      rt("cudaMemGetInfo", (int) cudaMemGetInfo.invokeExact(f, tot));
      return new long[] {f.get(JAVA_LONG, 0), tot.get(JAVA_LONG, 0)};
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

}
