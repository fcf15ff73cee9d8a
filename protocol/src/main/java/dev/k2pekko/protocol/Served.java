package dev.k2pekko.protocol;

/**
 * How a served LLM sampled an episode's actions (agents driving an OpenAI-compatible server, {@code --policy openai}):
 * the model's id, and per action in order the sum of its sampled tokens' log-probabilities as the server reported them
 * ({@code logprobs}; NaN where it reported none) and how many tokens it sampled. Kept apart from {@link Sampling}: that
 * is the learned policy's pi_old, which the RL loss reads; these are another model's numbers, for whoever exports them.
 */
public record Served(String model, double[] logProbs, int[] tokens) implements KryoWire {}
