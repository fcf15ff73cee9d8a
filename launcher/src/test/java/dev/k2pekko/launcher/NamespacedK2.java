package dev.k2pekko.launcher;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A {@code k2} command in one of {@link PartitionTest}'s network namespaces. A namespace has a loopback of its own, so
 * the PostgreSQL server at the root namespace's 127.0.0.1:5432 is not there; its unix socket is (sockets in the file
 * system cross namespaces). This relays the namespace's 127.0.0.1:{@code port} to that socket, then runs {@code k2}
 * with the remaining arguments. The partition's rules filter the namespaces' own network, never the relay: the journal
 * stays reachable from both sides, as a database outside the partitioned network would be.
 *
 * <p>Arguments: the server's unix socket, the port to listen on, then the {@code k2} command line.
 */
public final class NamespacedK2 {
  private NamespacedK2() {}

  public static void main(String[] args) throws Exception {
    var socket = UnixDomainSocketAddress.of(Path.of(args[0]));
    var listener = ServerSocketChannel.open();
    listener.bind(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[1])));
    Thread.ofVirtual().name("journal-relay").start(() -> accept(listener, socket));
    K2.main(Arrays.copyOfRange(args, 2, args.length));
  }

  private static void accept(ServerSocketChannel listener, UnixDomainSocketAddress socket) {
    while (listener.isOpen()) { // for the life of the JVM
      SocketChannel client;
      try {
        client = listener.accept();
      } catch (IOException e) {
        System.err.println("journal relay stopped: " + e);
        return;
      }
      try {
        var server = SocketChannel.open(StandardProtocolFamily.UNIX);
        server.connect(socket);
        Thread.ofVirtual().start(() -> pump(client, server));
        Thread.ofVirtual().start(() -> pump(server, client));
      } catch (IOException e) {
        System.err.println("journal relay: cannot reach " + socket + ": " + e); // the client sees its connection closed
        try {
          client.close();
        } catch (IOException ignored) {
          // closing is all that is left to do
        }
      }
    }
  }

  /** Copies one direction until it ends, then closes both (the other direction's pump then ends too). */
  private static void pump(SocketChannel from, SocketChannel to) {
    var buffer = ByteBuffer.allocateDirect(64 * 1024);
    try (from; to) {
      while (from.read(buffer) >= 0) {
        buffer.flip();
        while (buffer.hasRemaining()) to.write(buffer);
        buffer.clear();
      }
    } catch (IOException closed) {
      // the other side went away: the connection is over
    }
  }
}
