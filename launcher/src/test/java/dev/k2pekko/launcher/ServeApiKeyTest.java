package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `k2 serve --api-key-file`: a request without the key, or with another, is OpenAI's 401; with it, the API answers. */
class ServeApiKeyTest {
  @Test void requestsNeedTheKey(@TempDir Path dir) throws Exception {
    TinyPolicy.write(dir.resolve("checkpoints"), 50);
    var key = dir.resolve("key");
    Files.writeString(key, "sk-k2-0123456789abcdef\n");
    var serve = new ServeCommand();
    serve.checkpoint = dir.resolve("checkpoints").toString();
    serve.port = 0;
    serve.host = "127.0.0.1";
    serve.modelName = "k2-policy";
    serve.maxBodyBytes = 1 << 20;
    serve.maxConcurrent = 8;
    serve.requestTimeout = 30;
    serve.apiKeyFile = key.toString();
    var running = serve.start();
    try {
      var http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
      var models = URI.create("http://127.0.0.1:" + running.port() + "/v1/models");
      var none = http.send(HttpRequest.newBuilder(models).timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(401, none.statusCode());
      assertTrue(none.body().contains("\"code\":\"invalid_api_key\""), none.body());
      var wrong = http.send(HttpRequest.newBuilder(models).header("Authorization", "Bearer sk-k2-0123456789abcdeX").timeout(Duration.ofSeconds(30)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertEquals(401, wrong.statusCode());
      var chat = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + running.port() + "/v1/chat/completions"))
          .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"k2-policy\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"))
          .header("Content-Type", "application/json").timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
      assertEquals(401, chat.statusCode(), "a POST without the key is refused too (its body read and dropped)");
      var ok = http.send(HttpRequest.newBuilder(models).header("Authorization", "Bearer sk-k2-0123456789abcdef").timeout(Duration.ofSeconds(30)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertEquals(200, ok.statusCode(), ok.body());
      assertTrue(ok.body().contains("\"id\":\"k2-policy\""), ok.body());
    } finally {
      running.stop();
    }
  }
}
