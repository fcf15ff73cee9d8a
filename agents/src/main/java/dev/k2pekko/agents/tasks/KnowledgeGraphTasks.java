package dev.k2pekko.agents.tasks;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tasks on a real MCP tool server: recording facts in the knowledge graph of {@code @modelcontextprotocol/server-memory}
 * (the server named by {@code k2.mcp.knowledge-graph}). Difficulty 1 creates a person with an observation; 2 adds an
 * organization and a relation between them; 3 adds an observation to the organization afterwards. The end state the
 * judge checks is the graph as the server holds it at the episode's end ({@code kg:entity:NAME} ->
 * {@code TYPE|observations}, {@code kg:relation:FROM|TYPE|TO}), read back from the server by the tool worker; any
 * other entity or relation the episode leaves there is a side effect. Names come from small pools, so concurrent
 * episodes often use the same ones: the tool worker keeps each episode's names apart.
 */
public final class KnowledgeGraphTasks {
  public static final String CATEGORY = "kg";
  static final String[] PEOPLE = {"Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken"};
  static final String[] ORGS = {"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"};
  static final String[] TRAITS = {"likes tea", "speaks French", "plays chess", "runs marathons", "writes compilers", "keeps bees"};
  static final String[] PLACES = {"Oslo", "Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn"};
  static final String[] RELATIONS = {"works_at", "advises", "founded"};

  private final String server;

  /** {@code server}: the MCP server's name, the prefix of its tools ({@code mem} for {@code mem.create_entities}). */
  public KnowledgeGraphTasks(String server) {
    if (server == null || server.isEmpty()) throw new IllegalArgumentException("knowledge-graph tasks need k2.mcp.knowledge-graph (the memory server's name)");
    this.server = server;
  }

  public String server() { return server; }

  /** The tools every task offers: those that write the graph, and open_nodes to look at it (never read_graph or search_nodes, which would show other episodes' entities). */
  public List<String> tools() {
    return List.of(server + ".create_entities", server + ".create_relations", server + ".add_observations", server + ".open_nodes");
  }

  /**
   * A task of {@code split} ({@link TaskGenerator#heldOut}: one prompt in eight, by its hash, so the split is a
   * property of the instance and no held-out prompt is ever a training one): the first draw of the seed stream that
   * falls in it. {@link TaskGenerator.Split#ALL} is {@link #task(long, String, int)}.
   */
  public Task task(long seed, String id, int difficulty, TaskGenerator.Split split) {
    return TaskGenerator.firstOf(split, seed, "knowledge-graph task", s -> task(s, id, difficulty));
  }

  /**
   * What the learned policy needs to play these tasks (k2.policy.tasks = kg): the offered tools, written with nested
   * arguments, and one token per recurring piece of their calls, results and prompts: argument keys with the brackets
   * around them, the name pools, the prompt's phrases.
   */
  public dev.k2pekko.agents.policy.PolicyFormat.TaskVocabulary vocabulary() {
    var words = new java.util.LinkedHashSet<String>();
    for (String k : List.of("entities", "relations", "observations", "name", "entityType", "from", "to", "relationType", "entityName",
        "contents", "addedObservations", "entityNames")) {
      for (String w : List.of(k + "=", "|" + k + "=", "{" + k + "=", "[{" + k + "=", k + "=[", "|" + k + "=[", "|" + k + "=[]", k + "=[{")) words.add(w);
    }
    words.addAll(List.of("[]", "[{", "}]", "]}", "]}]", "}|{", "]}|{", "[]}", "[]}]", "[]}|{"));
    for (String[] pool : new String[][] {PEOPLE, ORGS, TRAITS, PLACES, RELATIONS}) words.addAll(List.of(pool));
    for (String r : RELATIONS) words.add(r.replace('_', ' '));
    words.addAll(List.of("person", "organization", "based in ", "done", "In the knowledge graph, record that ", " is a person who ",
        ", that ", " is an organization, and that ", " (relation ", "); then add the observation that ", " is based in ",
        ". Answer with done."));
    return new dev.k2pekko.agents.policy.PolicyFormat.TaskVocabulary(tools(), List.copyOf(words));
  }

  public Task task(long seed, String id, int difficulty) {
    if (difficulty < 1 || difficulty > 3) throw new IllegalArgumentException("knowledge-graph tasks have difficulty 1..3, got " + difficulty);
    var rnd = new SplittableRandom(seed);
    String person = PEOPLE[rnd.nextInt(PEOPLE.length)], org = ORGS[rnd.nextInt(ORGS.length)];
    String trait = TRAITS[rnd.nextInt(TRAITS.length)], place = PLACES[rnd.nextInt(PLACES.length)];
    String relation = RELATIONS[rnd.nextInt(RELATIONS.length)];
    var plan = new ArrayList<PlanStep>();
    var checks = new ArrayList<EndStateCheck>();
    var sentence = new StringBuilder("In the knowledge graph, record that " + person + " is a person who " + trait);
    var entities = new ArrayList<Map<String, Object>>();
    entities.add(Map.of("name", person, "entityType", "person", "observations", List.of(trait)));
    checks.add(new EndStateCheck("kg:entity:" + person, "person|" + trait, person + " is a person who " + trait));
    if (difficulty >= 2) {
      entities.add(Map.of("name", org, "entityType", "organization", "observations", List.of()));
      sentence.append(", that ").append(org).append(" is an organization, and that ").append(person).append(" ")
          .append(relation.replace('_', ' ')).append(" ").append(org).append(" (relation ").append(relation).append(")");
    }
    plan.add(new PlanStep(server + ".create_entities", Map.of("entities", List.copyOf(entities)), false));
    if (difficulty >= 2) {
      plan.add(new PlanStep(server + ".create_relations", Map.of("relations", List.of(Map.of("from", person, "to", org, "relationType", relation))), false));
      checks.add(new EndStateCheck("kg:relation:" + person + "|" + relation + "|" + org, "present", person + " " + relation + " " + org));
      String orgState = "organization|" + (difficulty >= 3 ? "based in " + place : "");
      checks.add(new EndStateCheck("kg:entity:" + org, orgState, org + " is an organization"));
    }
    if (difficulty >= 3) {
      sentence.append("; then add the observation that ").append(org).append(" is based in ").append(place);
      plan.add(new PlanStep(server + ".add_observations", Map.of("observations", List.of(Map.of("entityName", org, "contents", List.of("based in " + place)))), false));
    }
    String prompt = sentence + ". Answer with done.";
    var tools = plan.stream().map(PlanStep::tool).toList();
    var rubric = new Rubric(List.copyOf(checks), "done", tools, 2 * plan.size() + 2, java.util.Set.of());
    return new Task(id, CATEGORY, difficulty, seed, prompt, List.copyOf(plan), rubric, tools());
  }
}
