package dev.k2pekko.protocol;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.pekko.serialization.jackson.JacksonMigration;

/** Reads events written by older versions. v1 → v2: trajectories gained {@code policy}; v1 only ran the teacher. */
public final class TrajectoryRecordedMigration extends JacksonMigration {
  @Override public int currentVersion() { return 2; }

  @Override public JsonNode transform(int fromVersion, JsonNode json) {
    if (fromVersion < 2 && json.get("trajectory") instanceof ObjectNode t && !t.has("policy")) {
      t.put("policy", "teacher");
    }
    return json;
  }
}
