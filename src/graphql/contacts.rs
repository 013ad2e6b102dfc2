//! `startRegistration`'s `contacts`: the GraphQL input mirroring the upstream's
//! create-request contacts field for field (camelCase here, snake_case upstream),
//! checked before any upstream call. Contact details are personal data: an error
//! names the field at fault, never its value, and nothing here is logged.

use async_graphql::InputObject;

use super::error::GraphqlError;
use crate::upstream::{Address, Contact, Contacts, PostalInfo};

/// The contacts of a new registration; a role left out takes the account's default
/// address book entry (without a registrant there, Cloudflare answers `CONTACT_REQUIRED`).
#[derive(InputObject, Clone)]
pub(super) struct RegistrationContactsInput {
    /// The domain's owner.
    pub(super) registrant: Option<ContactInput>,
    /// The administrative contact.
    pub(super) administrator: Option<ContactInput>,
    /// The technical contact.
    pub(super) technical: Option<ContactInput>,
    /// The billing contact.
    pub(super) billing: Option<ContactInput>,
}

/// One contact.
#[derive(InputObject, Clone)]
pub(super) struct ContactInput {
    /// Email address (at most 254 characters).
    pub(super) email: String,
    /// Phone number in Cloudflare's E.164 form, `+CC.NUMBER` (e.g. `+1.5555555555`).
    pub(super) phone: String,
    /// Name and postal address.
    pub(super) postal_info: PostalInfoInput,
    /// Fax number, in the same form as `phone`.
    pub(super) fax: Option<String>,
}

/// A contact's name, organisation and address.
#[derive(InputObject, Clone)]
pub(super) struct PostalInfoInput {
    /// The person's name.
    pub(super) name: String,
    /// The organisation, if any.
    pub(super) organization: Option<String>,
    /// The postal address.
    pub(super) address: AddressInput,
}

/// A postal address.
#[derive(InputObject, Clone)]
pub(super) struct AddressInput {
    /// Street and number.
    pub(super) street: String,
    /// City.
    pub(super) city: String,
    /// State or province.
    pub(super) state: String,
    /// Postal code.
    pub(super) postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `US` (either case; sent upper case).
    pub(super) country_code: String,
}

/// Longest free-text field (name, organisation, street, city, state).
const MAX_TEXT: usize = 255;
/// Longest email address (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// Longest postal code.
const MAX_POSTAL_CODE: usize = 16;

impl RegistrationContactsInput {
    /// The upstream's `contacts`, or `BAD_USER_INPUT` naming the first invalid field.
    pub(super) fn parse(self) -> Result<Contacts, GraphqlError> {
        let role = |contact: Option<ContactInput>, name: &str| {
            contact
                .map(|contact| contact.parse(&format!("contacts.{name}")))
                .transpose()
        };
        Ok(Contacts {
            registrant: role(self.registrant, "registrant")?,
            administrator: role(self.administrator, "administrator")?,
            technical: role(self.technical, "technical")?,
            billing: role(self.billing, "billing")?,
        })
    }
}

impl ContactInput {
    fn parse(self, at: &str) -> Result<Contact, GraphqlError> {
        let postal = self.postal_info;
        let address = postal.address;
        let at = |field: &str| format!("{at}.{field}");
        Ok(Contact {
            email: email(self.email, &at("email"))?,
            phone: phone(self.phone, &at("phone"))?,
            fax: self.fax.map(|fax| phone(fax, &at("fax"))).transpose()?,
            postal_info: PostalInfo {
                name: text(postal.name, &at("postalInfo.name"), MAX_TEXT)?,
                organization: postal
                    .organization
                    .map(|org| text(org, &at("postalInfo.organization"), MAX_TEXT))
                    .transpose()?,
                address: Address {
                    street: text(address.street, &at("postalInfo.address.street"), MAX_TEXT)?,
                    city: text(address.city, &at("postalInfo.address.city"), MAX_TEXT)?,
                    state: text(address.state, &at("postalInfo.address.state"), MAX_TEXT)?,
                    postal_code: text(
                        address.postal_code,
                        &at("postalInfo.address.postalCode"),
                        MAX_POSTAL_CODE,
                    )?,
                    country_code: country(
                        address.country_code,
                        &at("postalInfo.address.countryCode"),
                    )?,
                },
            },
        })
    }
}

fn invalid(field: &str, rule: &str) -> GraphqlError {
    GraphqlError::BadUserInput(format!("{field} {rule}"))
}

/// Trimmed, 1 to `max` characters, no control characters.
fn text(value: String, field: &str, max: usize) -> Result<String, GraphqlError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > max {
        return Err(invalid(field, &format!("must be 1 to {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// `local@domain.tld`, visible ASCII, at most 254 characters.
fn email(value: String, field: &str) -> Result<String, GraphqlError> {
    let value = value.trim();
    let well_formed = value.len() <= MAX_EMAIL
        && value.bytes().all(|b| b.is_ascii_graphic())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    match well_formed {
        true => Ok(value.to_owned()),
        false => Err(invalid(
            field,
            "must be an email address such as name@example.com",
        )),
    }
}

/// E.164 as Cloudflare writes it: `+`, a 1 to 3 digit country code, `.`, the
/// number; 15 digits at most in all.
fn phone(value: String, field: &str) -> Result<String, GraphqlError> {
    let value = value.trim();
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let well_formed = value
        .strip_prefix('+')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(country, number)| {
            digits(country)
                && country.len() <= 3
                && digits(number)
                && country.len() + number.len() <= 15
        });
    match well_formed {
        true => Ok(value.to_owned()),
        false => Err(invalid(
            field,
            "must be an E.164 number written +CC.NUMBER, such as +1.5555555555",
        )),
    }
}

/// Two letters (ISO 3166-1 alpha-2), sent upper case.
fn country(value: String, field: &str) -> Result<String, GraphqlError> {
    let value = value.trim();
    match value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
        true => Ok(value.to_ascii_uppercase()),
        false => Err(invalid(
            field,
            "must be a two-letter ISO 3166-1 country code such as US",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_emails_and_countries_are_checked_and_errors_do_not_echo_the_value() {
        assert!(phone("+1.5555555555".into(), "f").is_ok());
        assert!(phone("+44.2071234567".into(), "f").is_ok());
        for bad in [
            "5555555555",
            "+1-555",
            "+1.",
            "+1234.5",
            "+1.1234567890123456",
        ] {
            let error = phone(bad.into(), "contacts.registrant.phone").unwrap_err();
            assert!(
                error.to_string().starts_with("contacts.registrant.phone "),
                "{bad}"
            );
        }
        let error = phone("+1-777-8888".into(), "f").unwrap_err();
        assert!(
            !error.to_string().contains("777"),
            "the value is not echoed"
        );
        assert!(email("a@example.com".into(), "f").is_ok());
        for bad in ["a", "a@b", "@example.com", "a@.com", "a b@example.com"] {
            assert!(email(bad.into(), "f").is_err(), "{bad}");
        }
        assert_eq!(country("us".into(), "f").unwrap(), "US");
        assert!(country("USA".into(), "f").is_err());
        assert!(text(" ".into(), "f", 5).is_err());
        assert!(text("abcdef".into(), "f", 5).is_err());
    }
}
