package io.cauldron.tribes;

import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.interceptors.TcpFailureDetector;

/**
 * Tomcat's TcpFailureDetector, except that a static member which comes back is tested as
 * it is now, not as it said goodbye.
 *
 * <p>When a static member stops cleanly it announces its shutdown, and the detector keeps
 * that announcement (a Member whose command is the shutdown payload) in addSuspects, to
 * add the member back once a test says it is alive. When it starts again the membership
 * below announces it (memberAdded) and the detector tests it once: the read test, a probe
 * the member must acknowledge within readTestTimeout. If that one test fails (a JVM that
 * has just started on a loaded host answers late), the member goes into addSuspects again,
 * but a HashMap keeps the key it has: the shutdown announcement, which memberAlive refuses
 * without testing. The heartbeat's retests then never pass, the membership below never
 * announces the member again (it counts it already), and this node's cluster leaves the
 * member out, sending it none of its session changes, until it restarts once more. On the
 * lab that was 5 of 8 node restarts under load (session 11), always the cluster that
 * starts second on the restarted node.
 *
 * <p>Taking the old entry out first keeps the member as announced now, so a failed test
 * is repeated by the next heartbeat (every 5 s), which adds it once it answers.
 *
 * <p>JMX: Tribes registers it through TcpFailureDetectorMBean, its parent's interface.
 */
public class RejoinFailureDetector extends TcpFailureDetector {
    @Override
    public void memberAdded(Member member) {
        if (membership == null) {
            setupMembership();
        }
        synchronized (membership) {
            addSuspects.remove(member);
        }
        super.memberAdded(member);
    }
}
