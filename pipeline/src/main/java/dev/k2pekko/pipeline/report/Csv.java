package dev.k2pekko.pipeline.report;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Numeric tables as CSV (RFC 4180: comma-separated, CRLF-free "\n" line ends, header cells quoted when
 * they hold a comma, quote or line break). Numbers are written with {@link Double#toString}, the shortest
 * text that reads back to the same double, so {@link #read} returns exactly what was written; NaN and
 * Infinity are written as such.
 */
public final class Csv {
  private Csv() {}

  /** A header and its rows. */
  public record Table(List<String> header, List<double[]> rows) {}

  /** Writes header and rows (each as long as the header), creating parent directories. */
  public static void write(Path file, List<String> header, List<double[]> rows) throws IOException {
    if (header.isEmpty()) throw new IllegalArgumentException("a CSV needs at least one column");
    var sb = new StringBuilder();
    for (int i = 0; i < header.size(); i++) sb.append(i == 0 ? "" : ",").append(quote(header.get(i)));
    sb.append('\n');
    for (int r = 0; r < rows.size(); r++) {
      double[] row = rows.get(r);
      if (row.length != header.size()) {
        throw new IllegalArgumentException("row " + r + " has " + row.length + " values for " + header.size() + " columns " + header);
      }
      for (int i = 0; i < row.length; i++) sb.append(i == 0 ? "" : ",").append(row[i]);
      sb.append('\n');
    }
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) Files.createDirectories(parent);
    Files.writeString(file, sb, StandardCharsets.UTF_8);
  }

  /** Reads a file written by {@link #write}: a header of (possibly quoted) names, then numeric rows. */
  public static Table read(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    var header = new ArrayList<String>();
    int i = 0;
    while (true) { // header cells, quoted or not, up to the first line break outside quotes
      var cell = new StringBuilder();
      if (i < text.length() && text.charAt(i) == '"') {
        for (i++; ; i++) {
          if (i >= text.length()) throw new IOException(file + ": unterminated quoted header cell");
          char c = text.charAt(i);
          if (c == '"' && i + 1 < text.length() && text.charAt(i + 1) == '"') cell.append(text.charAt(++i));
          else if (c == '"') break;
          else cell.append(c);
        }
        i++;
      } else {
        while (i < text.length() && text.charAt(i) != ',' && text.charAt(i) != '\n') cell.append(text.charAt(i++));
      }
      header.add(cell.toString());
      if (i >= text.length() || text.charAt(i) == '\n') break;
      if (text.charAt(i) != ',') throw new IOException(file + ": unexpected '" + text.charAt(i) + "' after a quoted header cell");
      i++;
    }
    var rows = new ArrayList<double[]>();
    int line = 2;
    for (String l : text.substring(Math.min(i + 1, text.length())).split("\n")) {
      if (l.isEmpty()) continue;
      String[] cells = l.split(",", -1);
      if (cells.length != header.size()) throw new IOException(file + ":" + line + ": " + cells.length + " values for " + header.size() + " columns");
      double[] row = new double[cells.length];
      for (int c = 0; c < cells.length; c++) {
        try {
          row[c] = Double.parseDouble(cells[c]);
        } catch (NumberFormatException e) {
          throw new IOException(file + ":" + line + ": '" + cells[c] + "' in column " + header.get(c) + " is not a number", e);
        }
      }
      rows.add(row);
      line++;
    }
    return new Table(List.copyOf(header), List.copyOf(rows));
  }

  private static String quote(String s) {
    if (s.indexOf(',') < 0 && s.indexOf('"') < 0 && s.indexOf('\n') < 0 && s.indexOf('\r') < 0) return s;
    return '"' + s.replace("\"", "\"\"") + '"';
  }
}
