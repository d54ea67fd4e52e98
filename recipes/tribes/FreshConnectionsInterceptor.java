package io.cauldron.tribes;

import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;

/**
 * Has the channel's sender close its connections to a member when the member is added
 * (back), so that nothing is sent to it over a connection opened before it went away
 * (cut off, frozen, restarted), where a change sits unread behind the cut's
 * retransmissions or is lost to a peer process that is gone.
 *
 * Tribes tells the sender nothing of membership changes (Tomcat 10.1.60's
 * ChannelCoordinator never calls ChannelSender.remove). Put it last, next to the
 * transport: it hears of a member's return from the membership itself, before any
 * interceptor above lets a send go to it. Not when a member disappears: the membership
 * says so before TcpFailureDetector has checked (about 0.5 s), sends to the member go
 * on meanwhile, and a sender whose connection was closed then connects again to a
 * peer that is cut off, on the request's thread, for ParallelNioSender's fixed 5 s
 * (measured in session 7: 9 requests of the healthy node failed); until the member is
 * back nothing is sent to it anyway. It needs FreshConnectionsSender as the Transport
 * (the stock pooled sender's remove does nothing), and says so at start.
 */
public class FreshConnectionsInterceptor extends ChannelInterceptorBase implements FreshConnectionsInterceptorMBean {

    @Override
    public void start(int svc) throws ChannelException {
        FreshConnectionsSender.required(getChannel(), this);
        super.start(svc);
    }

    @Override
    public void memberAdded(Member member) {
        closeConnectionsTo(member);
        super.memberAdded(member);
    }

    private void closeConnectionsTo(Member member) {
        FreshConnectionsSender sender = FreshConnectionsSender.of(getChannel());
        if (sender != null) {
            sender.remove(member);
        }
    }
}
