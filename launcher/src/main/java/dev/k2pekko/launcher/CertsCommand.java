package dev.k2pekko.launcher;

import dev.k2pekko.agents.ClusterTls;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code k2 certs}: the certificates of a cluster's TLS ({@code k2.cluster.tls}), made with the JDK's keytool, nothing
 * downloaded. Without {@code --ca} it creates an authority ({@code ca.p12}: its key; keep it off the nodes) and one
 * node certificate signed by it; with {@code --ca DIR} it signs a new node certificate with the authority in DIR.
 */
@Command(name = "certs", mixinStandardHelpOptions = true,
    description = "Make the certificates for Artery TLS with mutual authentication (k2.cluster.tls, k2 node --tls): an authority "
        + "and a node certificate it signed, in PKCS#12 stores, with keytool.")
final class CertsCommand implements Callable<Integer> {
  @Option(names = "--out", required = true, paramLabel = "DIR", description = "directory to create: node.p12, trust.p12, password (and ca.p12 without --ca)")
  Path out;

  @Option(names = "--ca", paramLabel = "DIR", description = "sign with the authority of an earlier `k2 certs --out DIR` instead of creating one")
  Path ca;

  @Option(names = "--name", description = "the node certificate's common name (default ${DEFAULT-VALUE})", defaultValue = "k2 node")
  String name;

  static final String CA_STORE = "ca.p12", CA_ALIAS = "k2-ca", NODE_ALIAS = "node";
  static final int DAYS = 825;

  @Override public Integer call() throws Exception {
    if (Files.exists(out) && (!Files.isDirectory(out) || Files.list(out).findAny().isPresent())) {
      throw new NodeConfig.UsageError("--out " + out + " exists and is not an empty directory (nothing was changed)");
    }
    if (ca != null && (!Files.isRegularFile(ca.resolve(CA_STORE)) || !Files.isRegularFile(ca.resolve(ClusterTls.PASSWORD)))) {
      throw new NodeConfig.UsageError("--ca " + ca + " holds no authority (" + CA_STORE + " and " + ClusterTls.PASSWORD + " of `k2 certs --out`)");
    }
    if (!name.matches("[A-Za-z0-9 ._-]{1,64}")) throw new NodeConfig.UsageError("--name: letters, digits, space, . _ - (1 to 64), got '" + name + "'");
    var made = make(out, ca, name);
    System.err.println("k2: " + made);
    return 0;
  }

  /** Makes the stores in {@code out} (created); {@code ca}: the directory of an existing authority, or null for a new one. */
  static String make(Path out, Path ca, String name) throws IOException, InterruptedException {
    Files.createDirectories(out);
    var password = new byte[18];
    new SecureRandom().nextBytes(password);
    String pw = ca != null ? Files.readString(ca.resolve(ClusterTls.PASSWORD)).strip() : Base64.getUrlEncoder().withoutPadding().encodeToString(password);
    var pwFile = out.resolve(ClusterTls.PASSWORD);
    Files.writeString(pwFile, pw + "\n");
    restrict(pwFile);
    Path caStore = ca != null ? ca.resolve(CA_STORE) : out.resolve(CA_STORE);
    var node = out.resolve(ClusterTls.KEY_STORE);
    var work = Files.createTempDirectory(out, ".work");
    try {
      if (ca == null) {
        keytool("-genkeypair", "-alias", CA_ALIAS, "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=k2 cluster authority " + Long.toHexString(System.nanoTime()),
            "-ext", "bc:c=ca:true", "-ext", "ku:c=keyCertSign,cRLSign", "-validity", Integer.toString(DAYS), "-keystore", caStore.toString(),
            "-storetype", "PKCS12", "-storepass:file", pwFile.toString());
      }
      var caCert = work.resolve("ca.crt");
      keytool("-exportcert", "-rfc", "-alias", CA_ALIAS, "-keystore", caStore.toString(), "-storepass:file", pwFile.toString(), "-file", caCert.toString());
      keytool("-genkeypair", "-alias", NODE_ALIAS, "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=" + name, "-validity", Integer.toString(DAYS),
          "-keystore", node.toString(), "-storetype", "PKCS12", "-storepass:file", pwFile.toString());
      var csr = work.resolve("node.csr");
      keytool("-certreq", "-alias", NODE_ALIAS, "-keystore", node.toString(), "-storepass:file", pwFile.toString(), "-file", csr.toString());
      var signed = work.resolve("node.crt");
      keytool("-gencert", "-rfc", "-alias", CA_ALIAS, "-keystore", caStore.toString(), "-storepass:file", pwFile.toString(), "-infile", csr.toString(),
          "-outfile", signed.toString(), "-validity", Integer.toString(DAYS), "-ext", "ku:c=digitalSignature,keyAgreement",
          "-ext", "eku=serverAuth,clientAuth");
      // the chain: the authority first, then the node's certificate signed by it replaces its self-signed one
      keytool("-importcert", "-noprompt", "-alias", CA_ALIAS, "-file", caCert.toString(), "-keystore", node.toString(), "-storepass:file", pwFile.toString());
      keytool("-importcert", "-alias", NODE_ALIAS, "-file", signed.toString(), "-keystore", node.toString(), "-storepass:file", pwFile.toString());
      keytool("-importcert", "-noprompt", "-alias", CA_ALIAS, "-file", caCert.toString(), "-keystore", out.resolve(ClusterTls.TRUST_STORE).toString(),
          "-storetype", "PKCS12", "-storepass:file", pwFile.toString());
      for (var secret : List.of(caStore, node)) {
        if (secret.startsWith(out)) restrict(secret);
      }
    } finally {
      try (var files = Files.walk(work)) {
        for (var f : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
      }
    }
    return "certificates in " + out.toAbsolutePath() + ": " + ClusterTls.KEY_STORE + " (\"" + name + "\", signed by "
        + (ca != null ? "the authority in " + ca.toAbsolutePath() : "a new authority, " + CA_STORE + ": keep it off the nodes") + "), "
        + ClusterTls.TRUST_STORE + " (the authority), " + ClusterTls.PASSWORD + "; start every node with --tls DIR (k2.cluster.tls)";
  }

  /** Readable by its owner only: the password, and the stores that hold private keys. */
  private static void restrict(Path file) throws IOException {
    try {
      Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
    } catch (UnsupportedOperationException notPosix) {
      // a file system without POSIX permissions: the file stays as created
    }
  }

  private static void keytool(String... args) throws IOException, InterruptedException {
    var tool = Path.of(System.getProperty("java.home"), "bin", "keytool");
    if (!Files.isExecutable(tool)) throw new IllegalStateException("this Java has no keytool (" + tool + "): run `k2 certs` from a full JDK");
    var cmd = new ArrayList<>(List.of(tool.toString()));
    cmd.addAll(List.of(args));
    var p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    var output = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("keytool " + args[0] + " did not finish within 60 s");
    }
    if (p.exitValue() != 0) throw new IllegalStateException("keytool " + args[0] + " failed: " + output.strip());
  }
}
