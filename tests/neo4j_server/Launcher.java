// Starts an in-process Neo4j 5.26 (test harness) with Bolt on 127.0.0.1:<port>, prints the Bolt URI,
// and runs until its standard input closes or it is killed. Auth is off; the database directory is fresh.
// The page cache is set like a deployment's (third argument, bytes): the harness default of 8 MiB
// made every Neo4j figure about twice as slow as a configured server.
import java.nio.file.Path;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

public class Launcher {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        Path dir = Path.of(args[1]);
        long pageCache = Long.parseLong(args[2]);
        Neo4j neo4j = Neo4jBuilders.newInProcessBuilder(dir)
                .withDisabledServer()
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .withConfig(GraphDatabaseSettings.pagecache_memory, pageCache)
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(neo4j::close));
        System.out.println("BOLT " + neo4j.boltURI());
        System.out.flush();
        // Stop when the parent goes away (stdin closed) so no server outlives its test run.
        while (System.in.read() != -1) { }
        neo4j.close();
        System.exit(0);
    }
}
