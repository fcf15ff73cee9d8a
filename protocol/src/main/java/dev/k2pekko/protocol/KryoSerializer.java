package dev.k2pekko.protocol;

import com.esotericsoftware.kryo.Kryo;
import com.esotericsoftware.kryo.Serializer;
import com.esotericsoftware.kryo.io.Input;
import com.esotericsoftware.kryo.io.Output;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.JSerializer;

/**
 * Pekko serializer on Kryo 5 for {@link KryoWire} messages. Registration is required: the classes come from
 * {@code k2.kryo.registrations}, an object of lists, one per module, keyed {@code "<base id>-<module>"}: the
 * i-th class of a list gets id base + i, so every node with the same config assigns the same ids and adding a
 * module moves no other module's ids. Kryo instances are not thread-safe: one per thread.
 */
public final class KryoSerializer extends JSerializer {
  /** First id for our classes; Kryo reserves the low ids for primitives and String. */
  private static final int FIRST_ID = 100;
  private final ExtendedActorSystem system;
  private final Map<Integer, Class<?>> classes;
  private final ThreadLocal<Kryo> kryos;

  public KryoSerializer(ExtendedActorSystem system) {
    this.system = system;
    this.classes = registeredClasses(system);
    this.kryos = ThreadLocal.withInitial(this::newKryo);
  }

  static Map<Integer, Class<?>> registeredClasses(ExtendedActorSystem system) {
    var regs = system.settings().config().getConfig("k2.kryo.registrations");
    var out = new TreeMap<Integer, Class<?>>();
    for (String module : regs.root().keySet()) {
      int base;
      try {
        base = Integer.parseInt(module.substring(0, module.indexOf('-')));
      } catch (RuntimeException e) {
        throw new IllegalStateException("k2.kryo.registrations keys are \"<base id>-<module>\", got: " + module);
      }
      var names = regs.getStringList("\"" + module + "\"");
      for (int i = 0; i < names.size(); i++) {
        var previous = out.put(base + i, load(system, names.get(i)));
        if (previous != null) throw new IllegalStateException("Kryo id " + (base + i) + " is taken twice: " + previous.getName() + " and " + names.get(i));
      }
    }
    return out;
  }

  private static Class<?> load(ExtendedActorSystem system, String name) {
    try {
      return Class.forName(name, false, system.dynamicAccess().classLoader());
    } catch (ClassNotFoundException e) {
      throw new IllegalStateException("k2.kryo.registrations names a class that is not on the classpath: " + name, e);
    }
  }

  private Kryo newKryo() {
    var kryo = new Kryo();
    kryo.setRegistrationRequired(true);
    kryo.setReferences(false);
    kryo.setClassLoader(system.dynamicAccess().classLoader());
    var resolver = ActorRefResolver.get(Adapter.toTyped(system));
    var refSerializer = new ActorRefSerializer(resolver);
    int id = FIRST_ID;
    kryo.register(ArrayList.class, new ListSerializer(false), id++);
    kryo.register(LinkedHashMap.class, new MapSerializer(false), id++);
    kryo.register(java.util.HashMap.class, new MapSerializer(false), id++);
    for (String immutableList : List.of("java.util.ImmutableCollections$ListN", "java.util.ImmutableCollections$List12"))
      kryo.register(forName(immutableList), new ListSerializer(true), id++);
    for (String immutableMap : List.of("java.util.ImmutableCollections$MapN", "java.util.ImmutableCollections$Map1"))
      kryo.register(forName(immutableMap), new MapSerializer(true), id++);
    kryo.register(forName("java.util.Collections$EmptyList"), new ListSerializer(true), id++);
    kryo.register(forName("java.util.Collections$UnmodifiableRandomAccessList"), new ListSerializer(true), id++);
    kryo.register(forName("java.util.Collections$UnmodifiableMap"), new MapSerializer(true), id++);
    kryo.register(forName("org.apache.pekko.actor.typed.internal.adapter.ActorRefAdapter"), refSerializer, id++);
    kryo.register(double[].class, id++);
    kryo.register(float[].class, id++);
    kryo.register(int[].class, id++);
    kryo.register(long[].class, id++);
    kryo.register(byte[].class, id++);
    kryo.register(String[].class, id++);
    kryo.register(double[][].class, id++);
    if (id > 200) throw new IllegalStateException("built-in Kryo ids overflow into the module range");
    classes.forEach((classId, c) -> kryo.register(c, classId));
    return kryo;
  }

  private Class<?> forName(String name) {
    try {
      return Class.forName(name);
    } catch (ClassNotFoundException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override public int identifier() { return 4711; }

  @Override public boolean includeManifest() { return false; }

  @Override public byte[] toBinary(Object o) {
    var output = new Output(256, -1);
    kryos.get().writeClassAndObject(output, o);
    return output.toBytes();
  }

  @Override public Object fromBinaryJava(byte[] bytes, Class<?> manifest) {
    return kryos.get().readClassAndObject(new Input(bytes));
  }

  /** Actor refs travel as their serialization format and are resolved on the receiving node. */
  static final class ActorRefSerializer extends Serializer<ActorRef<?>> {
    private final ActorRefResolver resolver;
    ActorRefSerializer(ActorRefResolver resolver) { this.resolver = resolver; setImmutable(true); }
    @Override public void write(Kryo kryo, Output output, ActorRef<?> ref) { output.writeString(resolver.toSerializationFormat(ref)); }
    @Override public ActorRef<?> read(Kryo kryo, Input input, Class<? extends ActorRef<?>> type) { return resolver.resolveActorRef(input.readString()); }
  }

  /** Any list, read back as an ArrayList (or an unmodifiable copy for the JDK's immutable lists). */
  static final class ListSerializer extends Serializer<List<Object>> {
    private final boolean immutable;
    ListSerializer(boolean immutable) { this.immutable = immutable; }
    @Override public void write(Kryo kryo, Output output, List<Object> list) {
      output.writeVarInt(list.size(), true);
      for (Object o : list) kryo.writeClassAndObject(output, o);
    }
    @Override public List<Object> read(Kryo kryo, Input input, Class<? extends List<Object>> type) {
      int n = input.readVarInt(true);
      var list = new ArrayList<Object>(n);
      for (int i = 0; i < n; i++) list.add(kryo.readClassAndObject(input));
      return immutable ? java.util.Collections.unmodifiableList(list) : list;
    }
  }

  /** Any map, read back in insertion order. Null values are allowed (JSON null arguments). */
  static final class MapSerializer extends Serializer<Map<Object, Object>> {
    private final boolean immutable;
    MapSerializer(boolean immutable) { this.immutable = immutable; }
    @Override public void write(Kryo kryo, Output output, Map<Object, Object> map) {
      output.writeVarInt(map.size(), true);
      for (var e : map.entrySet()) {
        kryo.writeClassAndObject(output, e.getKey());
        kryo.writeClassAndObject(output, e.getValue());
      }
    }
    @Override public Map<Object, Object> read(Kryo kryo, Input input, Class<? extends Map<Object, Object>> type) {
      int n = input.readVarInt(true);
      var map = new LinkedHashMap<Object, Object>(Math.max(4, n * 2));
      for (int i = 0; i < n; i++) map.put(kryo.readClassAndObject(input), kryo.readClassAndObject(input));
      return immutable ? java.util.Collections.unmodifiableMap(map) : map;
    }
  }

}
