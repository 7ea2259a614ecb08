//! The channels a code reaches the phone on (API.md, `channel`), and the set a deployment
//! offers (`OTP_CHANNELS`). Every channel runs through the same store, limits, budget and
//! caps: one send of any channel is one send.

use super::token::AuthMethod;

/// One way to the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Sms,
    Whatsapp,
    /// A phone call that reads the code out.
    Voice,
}

impl Channel {
    pub const ALL: [Self; 3] = [Self::Sms, Self::Whatsapp, Self::Voice];

    /// The contract's name (`sms`, `whatsapp`, `voice`), also the stored one.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Voice => "voice",
        }
    }

    /// The contract's name, exactly (no case folding: the field is an enum of the spec).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|channel| channel.as_str() == name)
    }

    /// How a code of this channel authenticates, as the token's `amr` says (RFC 8176): a
    /// call is `tel`; a WhatsApp message, like an SMS, is a message to the number: `sms`.
    pub fn auth_method(self) -> AuthMethod {
        match self {
            Self::Sms | Self::Whatsapp => AuthMethod::Sms,
            Self::Voice => AuthMethod::Tel,
        }
    }
}

/// The channels offered, in the order the frontend offers them; never empty, no repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSet(Vec<Channel>);

impl Default for ChannelSet {
    fn default() -> Self {
        Self(vec![Channel::Sms])
    }
}

impl ChannelSet {
    /// `sms,voice`: comma-separated contract names, in order.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut channels = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let channel =
                Channel::parse(name).ok_or_else(|| format!("{name:?} is not a channel (use sms, whatsapp, voice)"))?;
            if channels.contains(&channel) {
                return Err(format!("{name} is listed twice"));
            }
            channels.push(channel);
        }
        if channels.is_empty() {
            return Err("name at least one channel".into());
        }
        Ok(Self(channels))
    }

    pub fn contains(&self, channel: Channel) -> bool {
        self.0.contains(&channel)
    }

    /// The channels in order.
    pub fn iter(&self) -> impl Iterator<Item = Channel> + '_ {
        self.0.iter().copied()
    }

    /// The contract's names, in order (the answer's `channels`).
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Channel::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        for bad in ["", "SMS", "Voice", "call", "whats_app", " sms"] {
            assert_eq!(Channel::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_call_is_tel_and_whatsapp_counts_as_sms() {
        assert_eq!(Channel::Voice.auth_method().amr(), "tel");
        assert_eq!(Channel::Sms.auth_method().amr(), "sms");
        assert_eq!(Channel::Whatsapp.auth_method().amr(), "sms");
    }

    #[test]
    fn the_set_keeps_its_order_and_refuses_repeats_unknowns_and_nothing() {
        let set = ChannelSet::parse(" voice, sms ,whatsapp").unwrap();
        assert_eq!(set.names(), ["voice", "sms", "whatsapp"]);
        assert!(set.contains(Channel::Voice));
        assert_eq!(ChannelSet::default().names(), ["sms"]);
        assert!(!ChannelSet::default().contains(Channel::Voice));
        for bad in ["", " , ", "sms,sms", "sms,fax", "SMS"] {
            assert!(ChannelSet::parse(bad).is_err(), "{bad:?}");
        }
    }
}
