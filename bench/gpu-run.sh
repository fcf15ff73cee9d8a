#!/usr/bin/env bash
# On the GPU host: the CUDA self-test, then the Java and PyTorch benchmarks, each side in its own process.
#   bash .gpu/gpu-run.sh .gpu [selftest,java,base,torch] [java parts: ns,optim,ops,step,agree] [torch parts: ns,optim,step,compile] [agree steps]
# base: GpuBench of an earlier build staged in DEST/base/lib (gpu-stage.sh with BASE=dir), parts $BASE_PARTS (step),
# for a before/after comparison on the same machine.
S=${1:-.gpu}
WHAT=${2:-selftest,java,torch}
JPARTS=${3:-ns,step,agree}
TPARTS=${4:-ns,step,compile}
AGREE=${5:-200}
# K2_JAVA_OPTS adds JVM options (e.g. -Xlog:gc:file=gc.log)
JAVA="$S/jre/bin/java --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmn8m -Xmx8g ${K2_JAVA_OPTS:-} -cp $S/lib/cuda-ops.jar:$S/lib/model.jar:$S/lib/optim.jar:$S/lib/bench.jar"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
rc=0
if [[ $WHAT == *selftest* ]]; then
  timeout 300 $JAVA dev.k2pekko.ops.cuda.CudaSelfTest 1 || rc=$?
  echo "selftest exit $rc"
fi
if [[ $WHAT == *java* ]]; then
  timeout 400 $JAVA dev.k2pekko.bench.GpuBench "$JPARTS" "$AGREE" || echo "java bench exit $?"
fi
if [[ $WHAT == *base* && -d $S/base/lib ]]; then
  echo "== base build: $(cat $S/base/COMMIT 2>/dev/null)"
  BJAVA="$S/jre/bin/java --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmn8m -Xmx8g -cp $(ls $S/base/lib/*.jar | tr '\n' :)"
  timeout 300 $BJAVA "$(cat $S/base/MAIN 2>/dev/null || echo dev.k2pekko.ps.optim.bench.GpuBench)" "${BASE_PARTS:-step}" "$AGREE" || echo "base bench exit $?"
  echo "== end of base build"
fi
if [[ $WHAT == *torch* ]]; then
  PYTHONUNBUFFERED=1 timeout 400 python3 "$S/torch_bench.py" "$TPARTS" || echo "torch bench exit $?"
fi
exit $rc
