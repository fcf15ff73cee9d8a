package dev.k2pekko.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.k2pekko.bundle.BundleCommand;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * A bundle leaves some jars out ({@link BundleCommand#LEFT_OUT}), and picocli reflects over every command's declared
 * methods and fields when {@code k2} starts: one of them whose signature names a class of a left-out jar (a lambda taking
 * a Pekko HTTP request is enough) makes every command of a bundle fail with NoClassDefFoundError. Such code belongs in a
 * class of its own, which only the command that needs it loads.
 */
class BundleCommandsTest {

  @Test void noCommandSignatureNamesAClassABundleLeavesOut() {
    var offending = new TreeSet<String>();
    var todo = new ArrayList<CommandLine>(List.of(K2.commandLine()));
    int commands = 0;
    while (!todo.isEmpty()) {
      var cl = todo.removeLast();
      commands++;
      todo.addAll(cl.getSubcommands().values());
      for (Class<?> c = cl.getCommandSpec().userObject().getClass(); c != null && c != Object.class; c = c.getSuperclass()) {
        for (Method m : c.getDeclaredMethods()) {
          check(offending, c, m.getName(), m.getReturnType());
          for (var p : m.getParameterTypes()) check(offending, c, m.getName(), p);
        }
        for (Field f : c.getDeclaredFields()) check(offending, c, f.getName(), f.getType());
      }
    }
    assertEquals(true, commands > 20, "walked the command tree: " + commands);
    assertEquals(new TreeSet<String>(), offending);
  }

  private static void check(TreeSet<String> offending, Class<?> owner, String member, Class<?> type) {
    while (type.isArray()) type = type.getComponentType();
    if (type.isPrimitive()) return;
    var source = type.getProtectionDomain().getCodeSource();
    if (source == null) return; // the JDK's own
    String path = source.getLocation().getPath();
    String jar = path.substring(path.lastIndexOf('/', path.length() - 2) + 1);
    for (String prefix : BundleCommand.LEFT_OUT) {
      if (jar.startsWith(prefix)) offending.add(owner.getName() + "." + member + ": " + type.getName() + " (" + jar + ")");
    }
  }
}
