package dev.k2pekko.tools;

import com.typesafe.config.Config;
import dev.k2pekko.protocol.ToolError;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The agentic firewall: what a tool call must pass where it is executed (in the tool worker, before the tool runs),
 * never in the agent, so no policy can talk its way past it. In order: the tool must be one of those offered to the
 * episode; the agent's and the tool's token buckets must hold a token; the arguments must fit the payload cap; every
 * path argument must stay inside the sandbox. One instance per node, shared by its workers (thread-safe): the rate
 * limits are per node, and an agent's calls stay on its node (see {@link ToolDirectory}).
 */
public final class Firewall {
  /**
   * @param rate calls per second refilled; 0 = no limit
   * @param burst the bucket's size: calls allowed at once after a quiet spell
   */
  public record Limit(double rate, double burst) {
    public static final Limit NONE = new Limit(0, 0);

    public Limit {
      if (!(rate >= 0) || Double.isInfinite(rate)) throw new IllegalArgumentException("rate must be finite and >= 0, got " + rate);
      if (rate > 0 && !(burst >= 1)) throw new IllegalArgumentException("burst must be >= 1 when a rate is set, got " + burst);
    }

    boolean on() { return rate > 0; }
  }

  /**
   * @param sandbox the directory path arguments are confined to; null: a virtual sandbox (relative paths without
   *     {@code ..} only, nothing on disk to follow)
   * @param pathArguments names of arguments that hold a path (or, as a JSON array, several)
   */
  public record Settings(boolean enabled, Limit perAgent, Limit perTool, int maxPayloadBytes, Path sandbox,
                         Set<String> pathArguments) {
    public static Settings from(Config tools) {
      var c = tools.getConfig("firewall");
      var sandbox = c.getString("sandbox");
      return new Settings(c.getBoolean("enabled"),
          new Limit(c.getDouble("per-agent.rate"), c.getDouble("per-agent.burst")),
          new Limit(c.getDouble("per-tool.rate"), c.getDouble("per-tool.burst")),
          (int) tools.getBytes("max-payload").longValue(),
          sandbox.isEmpty() ? null : Path.of(sandbox).toAbsolutePath().normalize(),
          Set.copyOf(c.getStringList("path-arguments")));
    }
  }

  /** Why a call was refused: the error kind the agent sees and a sentence for the agent and the audit trail. */
  public record Refused(ToolError reason, String detail) {}

  static final class Bucket {
    private double tokens;
    private long last;

    Bucket(double burst, long now) { tokens = burst; last = now; }

    boolean take(Limit limit, long now) { return takeUpTo(limit, now, 1) == 1; }

    /** Takes up to {@code max} whole tokens at once: how many it got (0: the limit binds). */
    synchronized int takeUpTo(Limit limit, long now, int max) {
      tokens = Math.min(limit.burst(), tokens + (now - last) * limit.rate() / 1e9);
      last = now;
      int n = (int) Math.min(max, Math.floor(tokens));
      tokens -= n;
      return n;
    }

    /** Tokens taken and not spent come back (never past the burst). */
    synchronized void giveBack(Limit limit, int n) {
      tokens = Math.min(limit.burst(), tokens + n);
    }

    /** When a call last took (or was refused) a token; read under the same lock, rarely (the sweep). */
    synchronized long lastUse() { return last; }
  }

  private volatile boolean enabled;
  private final Settings settings;
  private final ConcurrentHashMap<String, Bucket> agentBuckets = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, Bucket> toolBuckets = new ConcurrentHashMap<>();

  private final int lease;

  public Firewall(Settings settings) {
    this.settings = settings;
    this.lease = leaseSize(settings.perAgent());
    this.enabled = settings.enabled();
  }

  public Settings settings() { return settings; }

  public boolean enabled() { return enabled; }

  /** Switches the firewall on or off at run time: {@code k2 bench sim --firewall both} measures its cost in one run. */
  public void setEnabled(boolean on) { enabled = on; }

  /** What the firewall knows of an opened episode: its offered tools and its agent's bucket (looked up once). */
  public static final class Gate {
    /** A task offers a handful of tools, and a call names one of them mostly by the very string the task holds
     *  (both come from the universe's specs): a scan by identity, touching none of the names, finds it; only then
     *  are the names compared by value. Past {@link #SCAN} tools a set. */
    private final String[] offeredArray;
    private final Set<String> offeredSet;
    final String agentId;
    final Bucket agentBucket;
    /**
     * Tokens this episode took from its agent's bucket ahead of its calls, a few at a time ({@link Firewall#leaseSize}):
     * the bucket is one object per agent shared by the node's workers, and with thousands of agents in flight it is cold
     * in the cache on each call; touching it on every call was most of the firewall's time on the simulation
     * (BENCHMARKS.md "The open world"). Only the worker that owns the episode
     * touches this; what is left goes back to the bucket when the episode ends ({@link #close}), so the agent never
     * gets more than its limit, only, with episodes in flight on several workers at once, a refusal a few calls early.
     */
    int leased;
    static final int SCAN = 16;

    private Gate(java.util.Collection<String> offered, String agentId, Bucket agentBucket) {
      this.offeredArray = offered.size() <= SCAN ? List.copyOf(offered).toArray(String[]::new) : null;
      this.offeredSet = offeredArray == null ? Set.copyOf(offered) : null;
      this.agentId = agentId;
      this.agentBucket = agentBucket;
    }

    boolean offers(String tool) {
      if (offeredArray == null) return offeredSet.contains(tool);
      for (var s : offeredArray) if (s == tool) return true;
      for (var s : offeredArray) if (s.equals(tool)) return true;
      return false;
    }

    public String agentId() { return agentId; }
  }

  /** The gate of an episode that {@code agentId} opened with these tools offered. */
  public Gate open(String agentId, java.util.Collection<String> offered) {
    var bucket = settings.perAgent().on() && agentId != null
        ? agentBuckets.computeIfAbsent(agentId, k -> new Bucket(settings.perAgent().burst(), System.nanoTime())) : null;
    return new Gate(offered, agentId, bucket);
  }

  /**
   * Null when the call may go to the tool, else why not. {@code gate} is null when the episode was never opened
   * (no {@code OpenEpisode} reached this worker): then nothing was offered and every call is refused.
   * {@code episodeSandbox} narrows the sandbox for one episode (null: the configured one).
   */
  public Refused check(Gate gate, String tool, Map<String, Object> args, Path episodeSandbox) {
    return check(gate, tool, args, ArgumentValidator.payloadBytes(args), episodeSandbox, null);
  }

  /**
   * The same, with the arguments' {@link ArgumentValidator#payloadBytes} already counted (the tool worker counts them
   * for every call, firewall or not), and where only the arguments named in {@code pathKeys} can reach the tool as
   * paths: a tool of the universe has its schema checked after the firewall, which refuses any argument it does not
   * declare, so only its declared path arguments need looking at ({@link #pathKeys}). Null: every argument is looked
   * at (an MCP tool: its server checks its own schema, after the call has left).
   */
  public Refused check(Gate gate, String tool, Map<String, Object> args, int bytes, Path episodeSandbox, String[] pathKeys) {
    if (!enabled) return null;
    if (gate == null) return new Refused(ToolError.NOT_OFFERED, "the episode was not opened at this tool worker: no tools were offered to it");
    if (!gate.offers(tool)) return new Refused(ToolError.NOT_OFFERED, tool + " was not offered to this episode");
    if (gate.agentBucket != null && !takeLeased(gate)) {
      return new Refused(ToolError.RATE_LIMITED, "agent " + gate.agentId + " is over its limit of " + settings.perAgent().rate() + " calls/s; retry later");
    }
    if (settings.perTool().on()) {
      long now = System.nanoTime();
      if (!toolBuckets.computeIfAbsent(tool, k -> new Bucket(settings.perTool().burst(), now)).take(settings.perTool(), now)) {
        return new Refused(ToolError.RATE_LIMITED, tool + " is over its limit of " + settings.perTool().rate() + " calls/s; retry later");
      }
    }
    if (args == null) return null;
    if (bytes > settings.maxPayloadBytes()) {
      return new Refused(ToolError.PAYLOAD_TOO_LARGE, "arguments of " + bytes + " bytes exceed the cap of " + settings.maxPayloadBytes() + " bytes");
    }
    var sandbox = episodeSandbox != null ? episodeSandbox : settings.sandbox();
    if (pathKeys != null) {
      for (var key : pathKeys) {
        var why = outside(key, args.get(key), sandbox);
        if (why != null) return why;
      }
    } else {
      for (var e : args.entrySet()) {
        if (!settings.pathArguments().contains(e.getKey())) continue;
        var why = outside(e.getKey(), e.getValue(), sandbox);
        if (why != null) return why;
      }
    }
    return null;
  }

  /**
   * One token of the agent's, from the episode's lease (the common case: no clock, no lock) or, when that is spent,
   * from a new one.
   */
  private boolean takeLeased(Gate gate) {
    if (gate.leased > 0) {
      gate.leased--;
      return true;
    }
    int got = gate.agentBucket.takeUpTo(settings.perAgent(), System.nanoTime(), lease);
    if (got == 0) return false;
    gate.leased = got - 1;
    return true;
  }

  /**
   * The episode of {@code gate} has ended: the tokens it took and did not spend go back to its agent's bucket. An
   * episode that is never closed (its agent went away) keeps them, and the bucket refills at its rate.
   */
  public void close(Gate gate) {
    if (gate == null || gate.agentBucket == null || gate.leased == 0) return;
    gate.agentBucket.giveBack(settings.perAgent(), gate.leased);
    gate.leased = 0;
  }

  /**
   * How many tokens an episode takes at once: up to 8, and never more than an eighth of the burst, so a small
   * burst is spent call by call as before (a burst under 16: one at a time, exactly).
   */
  static int leaseSize(Limit perAgent) {
    return (int) Math.max(1, Math.min(8, Math.floor(perAgent.burst() / 8)));
  }

  /** The names among {@code params} that the firewall confines to the sandbox: what {@link #check} needs of a tool's schema. */
  public String[] pathKeys(List<ParamSpec> params) {
    var keys = params.stream().map(ParamSpec::name).filter(settings.pathArguments()::contains).toArray(String[]::new);
    // most tools have none: one shared empty array stays in the cache where an array per tool would miss it
    return keys.length == 0 ? NO_PATH_KEYS : keys;
  }

  private static final String[] NO_PATH_KEYS = {};

  /** The refusal of argument {@code key} when its value (a path, or a JSON array of them) leaves {@code sandbox}. */
  private static Refused outside(String key, Object value, Path sandbox) {
    if (value == null) return null; // absent: nothing to confine
    var values = value instanceof List<?> l ? l : List.of(value);
    for (var p : values) {
      if (!(p instanceof String s)) continue; // the schema check reports a wrong type
      var why = outside(s, sandbox);
      if (why != null) return new Refused(ToolError.PATH_OUTSIDE_SANDBOX, "argument '" + key + "' " + why);
    }
    return null;
  }

  /**
   * Why {@code path} leaves {@code sandbox}, or null when it stays inside. A {@code ..} segment is refused outright
   * (even one that would come back inside: a path that needs it is not one a task asks for); an absolute path must
   * lie under the sandbox; then the deepest part of the path that exists on disk is resolved with its symlinks and
   * must still lie under the sandbox's own real path.
   */
  static String outside(String path, Path sandbox) {
    if (path.indexOf('\0') >= 0) return "contains a NUL character";
    if (hasDotDotSegment(path)) return "\"" + clip(path) + "\" contains '..'";
    Path p;
    try {
      p = Path.of(path);
    } catch (InvalidPathException e) {
      return "\"" + clip(path) + "\" is not a valid path";
    }
    if (sandbox == null) return p.isAbsolute() || path.startsWith("~") ? "\"" + clip(path) + "\" is absolute: only paths relative to the sandbox are allowed" : null;
    var resolved = sandbox.resolve(p).normalize();
    if (!resolved.startsWith(sandbox)) return "\"" + clip(path) + "\" is outside the sandbox " + sandbox;
    try {
      // an episode's sandbox may not exist yet: resolve its deepest existing ancestor
      var rootAncestor = sandbox;
      while (rootAncestor != null && !Files.exists(rootAncestor)) rootAncestor = rootAncestor.getParent();
      if (rootAncestor == null) return "\"" + clip(path) + "\": the sandbox " + sandbox + " has no existing ancestor";
      var realRoot = rootAncestor.toRealPath().resolve(rootAncestor.relativize(sandbox)).normalize();
      var existing = resolved;
      while (existing != null && !Files.exists(existing, java.nio.file.LinkOption.NOFOLLOW_LINKS)) existing = existing.getParent();
      // nothing of the path inside the sandbox exists yet: no symlink to follow
      if (existing == null || !existing.startsWith(sandbox)) return null;
      // a dangling symlink exists but has no real path: follow it by hand
      var real = Files.isSymbolicLink(existing) && !Files.exists(existing)
          ? existing.getParent().toRealPath().resolve(Files.readSymbolicLink(existing)).normalize()
          : existing.toRealPath();
      if (!real.startsWith(realRoot)) return "\"" + clip(path) + "\" leads through a symlink out of the sandbox (to " + real + ")";
    } catch (IOException e) {
      return "\"" + clip(path) + "\" cannot be resolved: " + e.getMessage();
    }
    return null;
  }

  /** Forgets token buckets unused for {@code idleNanos} (a bucket that idle has refilled: a new one is the same). */
  public void sweep(long idleNanos) {
    long now = System.nanoTime();
    agentBuckets.values().removeIf(b -> now - b.lastUse() > idleNanos);
    toolBuckets.values().removeIf(b -> now - b.lastUse() > idleNanos);
  }

  /** Whether a segment of {@code path} between separators ('/' or '\\') is exactly {@code ..}. */
  static boolean hasDotDotSegment(String path) {
    int start = 0, n = path.length();
    for (int i = 0; i <= n; i++) {
      if (i == n || path.charAt(i) == '/' || path.charAt(i) == '\\') {
        if (i - start == 2 && path.charAt(start) == '.' && path.charAt(start + 1) == '.') return true;
        start = i + 1;
      }
    }
    return false;
  }

  private static String clip(String s) { return s.length() > 80 ? s.substring(0, 80) + "…" : s; }
}
