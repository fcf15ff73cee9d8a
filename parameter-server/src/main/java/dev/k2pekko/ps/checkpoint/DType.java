package dev.k2pekko.ps.checkpoint;

import java.nio.ByteBuffer;

/**
 * The safetensors element types this package reads, with their size in bytes. Only {@link #F32} and
 * {@link #F64} are written; the others are read so that files from other tools load (BF16 and F16 exactly,
 * I32 exactly as doubles).
 */
public enum DType {
  F64(8),
  F32(4),
  BF16(2),
  F16(2),
  I32(4);

  private final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  public int bytes() {
    return bytes;
  }

  /** The next element of a little-endian buffer, as a double (every type here converts exactly). */
  double get(ByteBuffer le) {
    return switch (this) {
      case F64 -> le.getDouble();
      case F32 -> le.getFloat();
      case BF16 -> Float.intBitsToFloat((le.getShort() & 0xffff) << 16);
      case F16 -> Float.float16ToFloat(le.getShort());
      case I32 -> le.getInt();
    };
  }

  /** Appends v to a little-endian buffer; F32 rounds to nearest. */
  void put(ByteBuffer le, double v) {
    switch (this) {
      case F64 -> le.putDouble(v);
      case F32 -> le.putFloat((float) v);
      default -> throw new UnsupportedOperationException("writing " + this + " is not supported (F32 or F64)");
    }
  }

  /** The dtype named in a header, or null when this package does not know it. */
  static DType parse(String name) {
    for (DType d : values()) if (d.name().equals(name)) return d;
    return null;
  }
}
