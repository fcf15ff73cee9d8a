package dev.k2pekko.bench;

import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.server.McpServerFeatures;
import io.modelcontextprotocol.server.transport.StdioServerTransportProvider;
import io.modelcontextprotocol.spec.McpSchema;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * An MCP server on stdin and stdout, built with the MCP Java SDK's server side, with one tool: {@code echo}, which
 * answers {@code Echo: MESSAGE} as the npm {@code server-everything}'s does. {@code k2 bench mcp} calls it where node
 * is missing (the GPU host), so that the bridge's cost against direct SDK calls can be measured on a quiet machine
 * with many cores too. It serves until its stdin ends (the client closed it).
 */
public final class EchoMcpServer {
  private EchoMcpServer() {}

  public static void serve() throws InterruptedException {
    var ended = new CountDownLatch(1);
    InputStream in = new FilterInputStream(System.in) {
      @Override public int read() throws IOException {
        int b = super.read();
        if (b < 0) ended.countDown();
        return b;
      }
      @Override public int read(byte[] buf, int off, int len) throws IOException {
        int n = super.read(buf, off, len);
        if (n < 0) ended.countDown();
        return n;
      }
    };
    var tool = McpSchema.Tool.builder("echo")
        .description("Echoes back the input")
        .inputSchema(Map.of("type", "object", "properties", Map.of("message", Map.of("type", "string", "description", "Message to echo")),
            "required", List.of("message")))
        .build();
    var echo = new McpServerFeatures.SyncToolSpecification(tool,
        (exchange, request) -> McpSchema.CallToolResult.builder().addTextContent("Echo: " + request.arguments().get("message")).build());
    var server = McpServer.sync(new StdioServerTransportProvider(McpJsonDefaults.getMapper(), in, System.out))
        .serverInfo("k2-echo", "1")
        .capabilities(McpSchema.ServerCapabilities.builder().tools(true).build())
        .tools(echo)
        // each call answered on the thread that read it, one at a time, as node's single thread does: with the SDK's
        // default (handlers on a pool) calls went unanswered when 16 were in flight (the bench's asks timed out after
        // 10 s; one in flight they did not)
        .immediateExecution(true)
        .build();
    try {
      ended.await();
    } finally {
      server.closeGracefully();
    }
  }
}
