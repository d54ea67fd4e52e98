package io.cauldron.tribes;

import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;

/**
 * When the failure detector below has found a member gone, resets this node's
 * connections to it (FreshConnectionsSender.resetConnectionsTo): what the kernel still
 * held for the member is dropped, not delivered when the member is back.
 *
 * <p>A host cut off from the network keeps what its node sent a peer in the moment of
 * the cut in its socket buffer for the whole cut, and the kernel delivers it when the
 * host is back, tens of seconds late. One such message can be a session's rename: the
 * cut host's balancer sends a request for the other node's session to its own node
 * (the other is out of reach), whose JvmRouteBinderValve renames the session and tells
 * the cluster. The peer, which has served that session all along, gets the rename
 * after the return and gives the session away; the user's next request makes a new
 * one. Tribes' OrderInterceptor does not stop it: it forgot the member's count when the
 * member disappeared, and the late message, numbered from before, is held and dropped
 * after 3 s (forwardExpired false) only if the member's new messages have not reached
 * its number by then; a node started shortly before the cut numbers low, and a CI run
 * of the e2e suite lost the session that way (session 21).
 *
 * <p>Put it above the failure detector: the membership below says a member is gone
 * before the detector has checked, and sends go on meanwhile. Above it, the member is
 * out of the channel's members, so nothing sends to it until it is back. The reset
 * runs on a thread of its own: it waits for a pooled sender that is sending.
 */
public class ResetOnDepartureInterceptor extends ChannelInterceptorBase {

    @Override
    public void start(int svc) throws ChannelException {
        FreshConnectionsSender.required(getChannel(), this);
        super.start(svc);
    }

    @Override
    public void memberDisappeared(Member member) {
        FreshConnectionsSender sender = FreshConnectionsSender.of(getChannel());
        if (sender != null) {
            Thread reset = new Thread(() -> sender.resetConnectionsTo(member),
                    "cauldron-reset-" + member.getName());
            reset.setDaemon(true);
            reset.start();
        }
        super.memberDisappeared(member);
    }
}
